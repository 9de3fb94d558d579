// Splitting a fused projection's output into its parts and joining their gradients
// (shaders/columns.wgsl).
import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { createTensor, type Tensor } from '../gpu/tensor.ts';

const WG = 256;

function dispatch(
  batch: Batch,
  entryPoint: 'slice' | 'place',
  whole: Tensor,
  part: Tensor,
  col0: number,
) {
  const total = whole.shape[whole.shape.length - 1];
  const width = part.shape[part.shape.length - 1];
  const rows = whole.numel / total;
  batch.dispatch(
    batch.gpu.pipelines.get({ shader: 'columns', entryPoint, constants: { WG } }),
    [whole, part],
    linearGrid(Math.ceil((rows * width) / WG), batch.gpu),
    packParams([{ u32: rows }, { u32: width }, { u32: total }, { u32: col0 }]),
    `${entryPoint} columns ${col0}…${col0 + width} of ${total}`,
  );
}

/** Columns col0 … col0 + width − 1 of x [rows × total], as a new [rows × width] tensor. */
export function sliceColumns(batch: Batch, x: Tensor, col0: number, width: number): Tensor {
  const rows = x.numel / x.shape[x.shape.length - 1];
  const part = createTensor(batch.gpu, [rows, width], 'f32', 'columns');
  dispatch(batch, 'slice', x, part, col0);
  return part;
}

/** Concatenates [rows × w_i] parts along columns into a new [rows × Σ w_i] tensor. */
export function joinColumns(batch: Batch, parts: readonly Tensor[]): Tensor {
  const rows = parts[0].numel / parts[0].shape[parts[0].shape.length - 1];
  const widths = parts.map((p) => p.shape[p.shape.length - 1]);
  const whole = createTensor(batch.gpu, [rows, widths.reduce((a, b) => a + b, 0)], 'f32', 'joined');
  let col0 = 0;
  parts.forEach((part, i) => {
    dispatch(batch, 'place', whole, part, col0);
    col0 += widths[i];
  });
  return whole;
}
