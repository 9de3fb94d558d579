import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { createTensor, numel, shapeString, type Tensor } from '../gpu/tensor.ts';

export const REDUCE_OPS = ['sum', 'max'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

// 256 invocations × 16 elements each per workgroup: long enough that the tree's barriers
// (8 per workgroup, ~0.3–0.5 µs each on SwiftShader) are a small share of the work, short
// enough that a 1M-element row still spreads over 245 workgroups.
const WG = 256;
const CHUNK_LEN = WG * 16;

/** Reduces the last dimension: x [..., cols] → [...]. An empty row gives 0 (sum) or −inf (max). */
export function reduceRows(batch: Batch, op: ReduceOp, x: Tensor): Tensor {
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: expected f32, got ${x.dtype}`);
  if (x.shape.length === 0) throw new ShapeError(`${op}: cannot reduce a scalar's last dimension`);
  const outShape = x.shape.slice(0, -1);
  return reduceMatrix(batch, op, x, numel(outShape), x.shape[x.shape.length - 1]!, outShape);
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
  const kernel = batch.gpu.pipelines.get({
    shader: 'reduce',
    constants: { OP: REDUCE_OPS.indexOf(op), WG },
  });
  // Each pass shrinks every row to ceil(cols / CHUNK_LEN) partial results.
  let input = x;
  let width = cols;
  for (;;) {
    const chunks = Math.max(1, Math.ceil(width / CHUNK_LEN));
    const target = chunks === 1 ? out : batch.temporary([rows, chunks], 'f32', `${op} partials`);
    const groups = rows * chunks;
    const params = packParams([
      { u32: width },
      { u32: chunks },
      { u32: groups },
      { u32: CHUNK_LEN },
      { f32: op === 'sum' ? 0 : -Infinity },
    ]);
    batch.dispatch(kernel, [input, target], linearGrid(groups, batch.gpu), params, `${op} ${shapeString([rows, width])}`);
    if (chunks === 1) return out;
    input = target;
    width = chunks;
  }
}
