import { USAGE } from './buffers.ts';
import type { Gpu } from './device.ts';
import { GpuError, kindOf } from './errors.ts';
import {
  bytesOf,
  isQuantized,
  shapeString,
  type DType,
  type HostArrays,
  type Tensor,
} from './tensor.ts';

/** GPUMapMode.READ (spec value), usable before Node installs the WebGPU globals. */
const MAP_MODE_READ = 0x1;

const HOST_ARRAY = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
} as const;

/** Copies a tensor back to the host. Waits for all work submitted before it. */
export async function readTensor<D extends DType>(
  gpu: Gpu,
  t: Tensor & { dtype: D },
): Promise<HostArrays[D]> {
  const { device, pool } = gpu;
  const what = `read ${t.dtype}${shapeString(t.shape)}`;
  const staging = pool.acquire(t.byteLength, USAGE.readback, what);
  try {
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label: what });
    encoder.copyBufferToBuffer(t.buffer, 0, staging, 0, t.byteLength);
    device.queue.submit([encoder.finish()]);
    const validation = device.popErrorScope();
    const allocationError = await pool.takeAllocationError();
    if (allocationError) throw allocationError;
    const error = await validation;
    if (error) throw new GpuError(error.message, what, kindOf(error));
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, t.byteLength);
    } catch (cause) {
      throw new GpuError(`mapping failed (device lost?): ${String(cause)}`, what, 'lost');
    }
    const bytes = staging.getMappedRange(0, t.byteLength).slice(0);
    staging.unmap();
    // A quantized tensor comes back as its raw blocks.
    const dtype: DType = t.dtype;
    if (isQuantized(dtype)) return new Uint8Array(bytes, 0, bytesOf(t)) as HostArrays[D];
    const count = t.numel;
    return new HOST_ARRAY[dtype](bytes, 0, count) as HostArrays[D];
  } finally {
    pool.release(staging);
  }
}

/** Reads an f32 tensor (the common case) without generic noise at call sites. */
export function readF32(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  if (t.dtype !== 'f32') throw new GpuError(`expected f32, got ${t.dtype}`, 'readF32');
  return readTensor(gpu, t as Tensor & { dtype: 'f32' });
}
