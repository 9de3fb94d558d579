import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { createTensor, isQuantized, shapeString, type Tensor } from '../gpu/tensor.ts';
import { affine } from './elementwise.ts';

const WG = 256;

/**
 * An f32 copy of a float tensor: half-precision ones (f16, bf16) widened exactly, quantized ones
 * decoded exactly as ggml decodes them, f32 ones copied. What code that needs f32 (SVDs, norms,
 * elementwise kernels) takes of a weight that may be stored in half precision or quantized.
 */
export function asF32(batch: Batch, x: Tensor): Tensor {
  if (x.dtype === 'f32') return affine(batch, x, 1);
  if (isQuantized(x.dtype)) {
    const y = createTensor(batch.gpu, x.shape, 'f32', `${x.dtype} decoded`);
    const kernel = batch.gpu.pipelines.get({
      shader: 'dequant',
      uses: ['quant', `quant_${x.dtype}`],
      entryPoint: 'widen',
      constants: { WG },
    });
    // One invocation per 4 elements (a quantized tensor holds whole blocks of 32 or 256).
    batch.dispatch(
      kernel,
      [x, y],
      linearGrid(Math.ceil(x.numel / 4 / WG), batch.gpu),
      packParams([{ u32: x.numel }, { u32: 0 }]),
      `widen ${x.dtype}${shapeString(x.shape)}`,
    );
    return y;
  }
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
