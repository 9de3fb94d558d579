import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { createTensor, numel, shapeString, type Tensor } from '../gpu/tensor.ts';

export const REDUCE_OPS = ['sum', 'max'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

// Up to 256 invocations × 16 elements each per workgroup: long enough that the tree's
// barriers (~0.3–0.5 µs per subgroup each on SwiftShader) are a small share of the work,
// short enough that a 1M-element row still spreads over 245 workgroups. Shorter rows get
// a smaller power-of-two workgroup so fewer invocations idle through the barriers.
const MAX_WG = 256;
const ITEMS_PER_INVOCATION = 16;
const CHUNK_LEN = MAX_WG * ITEMS_PER_INVOCATION;
// Rows this short reduce serially, one invocation per row, with no barriers at all.
const SERIAL_MAX_COLS = 64;
const SERIAL_WG = 64;

/** Reduces the last dimension: x [..., cols] → [...]. An empty row gives 0 (sum) or −inf (max). */
export function reduceRows(batch: Batch, op: ReduceOp, x: Tensor): Tensor {
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: expected f32, got ${x.dtype}`);
  if (x.shape.length === 0) throw new ShapeError(`${op}: cannot reduce a scalar's last dimension`);
  const outShape = x.shape.slice(0, -1);
  return reduceMatrix(batch, op, x, numel(outShape), x.shape[x.shape.length - 1], outShape);
}

/** Reduces every element: x → [1]. */
export function reduceAll(batch: Batch, op: ReduceOp, x: Tensor): Tensor {
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: expected f32, got ${x.dtype}`);
  return reduceMatrix(batch, op, x, 1, x.numel, [1]);
}

function reduceMatrix(
  batch: Batch,
  op: ReduceOp,
  x: Tensor,
  rows: number,
  cols: number,
  outShape: readonly number[],
): Tensor {
  const out = createTensor(batch.gpu, outShape, 'f32', op);
  if (rows === 0) return out;
  const OP = REDUCE_OPS.indexOf(op);
  const identity = op === 'sum' ? 0 : -Infinity;
  // Each pass shrinks every row to ceil(width / CHUNK_LEN) partial results.
  let input = x;
  let width = cols;
  for (;;) {
    const what = `${op} ${shapeString([rows, width])}`;
    if (width <= SERIAL_MAX_COLS) {
      const kernel = batch.gpu.pipelines.get({
        shader: 'reduce',
        entryPoint: 'serial',
        constants: { OP, WG: SERIAL_WG },
      });
      const params = packParams([
        { u32: width },
        { u32: 1 },
        { u32: rows },
        { u32: width },
        { f32: identity },
      ]);
      batch.dispatch(
        kernel,
        [input, out],
        linearGrid(Math.ceil(rows / SERIAL_WG), batch.gpu),
        params,
        what,
      );
      return out;
    }
    const chunks = Math.ceil(width / CHUNK_LEN);
    const wg = Math.min(MAX_WG, 2 ** Math.ceil(Math.log2(Math.ceil(width / ITEMS_PER_INVOCATION))));
    const kernel = batch.gpu.pipelines.get({ shader: 'reduce', constants: { OP, WG: wg } });
    const target = chunks === 1 ? out : batch.temporary([rows, chunks], 'f32', `${op} partials`);
    const groups = rows * chunks;
    const params = packParams([
      { u32: width },
      { u32: chunks },
      { u32: groups },
      { u32: CHUNK_LEN },
      { f32: identity },
    ]);
    batch.dispatch(kernel, [input, target], linearGrid(groups, batch.gpu), params, what);
    if (chunks === 1) return out;
    input = target;
    width = chunks;
  }
}
