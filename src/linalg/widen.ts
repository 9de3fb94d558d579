import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { createTensor, shapeString, type Tensor } from '../gpu/tensor.ts';
import { affine } from './elementwise.ts';

const WG = 256;

/**
 * An f32 copy of a float tensor: half-precision ones (f16, bf16) widened exactly, f32 ones
 * copied. What code that needs f32 (SVDs, norms, elementwise kernels) takes of a weight that
 * may be stored in half precision.
 */
export function asF32(batch: Batch, x: Tensor): Tensor {
  if (x.dtype === 'f32') return affine(batch, x, 1);
  if (x.dtype !== 'f16' && x.dtype !== 'bf16') {
    throw new Error(`asF32: ${x.dtype}${shapeString(x.shape)} is not a float tensor`);
  }
  const y = createTensor(batch.gpu, x.shape, 'f32', `${x.dtype} widened`);
  const kernel = batch.gpu.pipelines.get({
    shader: 'widen',
    uses: ['half'],
    constants: { BF16: Number(x.dtype === 'bf16'), WG },
  });
  const words = Math.ceil(x.numel / 2);
  batch.dispatch(
    kernel,
    [x, y],
    linearGrid(Math.ceil(words / WG), batch.gpu),
    packParams([{ u32: x.numel }]),
    `widen ${x.dtype}${shapeString(x.shape)}`,
  );
  return y;
}
