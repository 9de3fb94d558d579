import { USAGE } from './buffers.ts';
import type { Gpu } from './device.ts';
import { GpuError, ShapeError } from './errors.ts';

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32';

/** Host arrays matching each dtype (f16 and bf16 travel as raw bits: src/gpu/half.ts). */
export interface HostArrays {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  i32: Int32Array;
  u32: Uint32Array;
}
export type HostArray = HostArrays[DType];

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  i32: 4,
  u32: 4,
};

/** A dense, row-major array on the GPU. The buffer may be larger than `byteLength` (pooled). */
export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly numel: number;
  /** Bytes holding the elements, rounded up to 4 (the binding size; at least 4). */
  readonly byteLength: number;
  readonly buffer: GPUBuffer;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join('×')}]`;
}

function checkShape(shape: readonly number[]): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(
      `Invalid tensor shape ${JSON.stringify(shape)}: dimensions must be integers ≥ 0`,
    );
  }
}

/** An uninitialised tensor from the pool. */
export function createTensor(
  gpu: Gpu,
  shape: readonly number[],
  dtype: DType = 'f32',
  label = 'tensor',
): Tensor {
  checkShape(shape);
  const n = numel(shape);
  const byteLength = Math.max(4, Math.ceil((n * BYTES_PER_ELEMENT[dtype]) / 4) * 4);
  const what = `${label} ${dtype}${shapeString(shape)}`;
  if (byteLength > gpu.limits.maxStorageBufferBindingSize) {
    throw new GpuError(
      `needs ${byteLength} bytes in one binding; this device binds at most ${gpu.limits.maxStorageBufferBindingSize}`,
      what,
      'out-of-memory',
    );
  }
  const buffer = gpu.pool.acquire(byteLength, USAGE.storage, what);
  return { shape: [...shape], dtype, numel: n, byteLength, buffer };
}

/** Copies host data into a new tensor. */
export function uploadTensor<D extends DType>(
  gpu: Gpu,
  data: HostArrays[D],
  shape: readonly number[],
  dtype: D,
  label = 'upload',
): Tensor {
  checkShape(shape);
  if (data.length !== numel(shape)) {
    throw new ShapeError(`${label}: ${data.length} values do not fill shape ${shapeString(shape)}`);
  }
  const t = createTensor(gpu, shape, dtype, label);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    gpu.device.queue.writeBuffer(t.buffer, 0, bytes);
  } else {
    // writeBuffer needs a multiple of 4 bytes: an odd count of halves gets one pad half.
    const padded = new Uint8Array(t.byteLength);
    padded.set(bytes);
    gpu.device.queue.writeBuffer(t.buffer, 0, padded);
  }
  return t;
}

/** Returns the tensor's buffer to the pool; the tensor must not be used afterwards. */
export function releaseTensor(gpu: Gpu, ...tensors: Tensor[]): void {
  for (const t of tensors) gpu.pool.release(t.buffer);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The same buffer seen with another shape of equal size (not owned: release the original). */
export function reshaped(t: Tensor, shape: readonly number[]): Tensor {
  checkShape(shape);
  if (numel(shape) !== t.numel) {
    throw new ShapeError(`cannot view ${shapeString(t.shape)} as ${shapeString(shape)}`);
  }
  return { ...t, shape: [...shape] };
}
