// Moving f64 host matrices (cpu/dense.ts) to and from f32 GPU tensors.
import type { Gpu } from '../gpu/device.ts';
import { readF32 } from '../gpu/readback.ts';
import { uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { mat, toF32, type Mat } from './cpu/dense.ts';

/** Uploads an f64 host matrix as an f32 tensor. */
export function uploadMat(gpu: Gpu, m: Mat): Tensor {
  return uploadTensor(gpu, toF32(m), [m.rows, m.cols], 'f32');
}

/** Reads a 2-D f32 tensor back as an f64 host matrix. */
export async function readMat(gpu: Gpu, t: Tensor): Promise<Mat> {
  const [rows, cols] = t.shape as [number, number];
  return mat(rows, cols, await readF32(gpu, t));
}
