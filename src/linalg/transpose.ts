import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { createTensor, shapeString, type Tensor } from '../gpu/tensor.ts';

const WG = 256;

/** Swaps the last two dimensions: [..., rows, cols] → [..., cols, rows]. */
export function transpose(batch: Batch, x: Tensor): Tensor {
  if (x.dtype !== 'f32' || x.shape.length < 2) {
    throw new ShapeError(
      `transpose: expected an f32 tensor of ≥ 2 dimensions, got ${x.dtype}${shapeString(x.shape)}`,
    );
  }
  const [rows, cols] = x.shape.slice(-2) as [number, number];
  const out = createTensor(batch.gpu, [...x.shape.slice(0, -2), cols, rows], 'f32', 'transpose');
  const kernel = batch.gpu.pipelines.get({ shader: 'transpose', constants: { WG } });
  const params = packParams([{ u32: rows }, { u32: cols }, { u32: x.numel }]);
  batch.dispatch(
    kernel,
    [x, out],
    linearGrid(Math.ceil(x.numel / WG), batch.gpu),
    params,
    `transpose ${shapeString(x.shape)}`,
  );
  return out;
}
