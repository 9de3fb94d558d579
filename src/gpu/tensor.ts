import { USAGE } from './buffers.ts';
import type { Gpu } from './device.ts';
import {
  QUANT_TYPES,
  type BlockType,
  type GgmlType,
  type QuantType,
} from '../model/gguf/quant-types.ts';
import { GpuError, ShapeError } from './errors.ts';

/**
 * The block-quantized types (the frozen weights of GGUF models, or of any model quantized on
 * load), by the quant table's name in lower case: 'q8_0', 'q4_k', 'nf4', … A tensor of one has the logical shape [...rows, k] (k a multiple of the block
 * size) and holds the file's raw blocks in row-major order, so its element i is value
 * i mod blockSize of block ⌊i / blockSize⌋ whatever the shape. All a type's facts (block size,
 * bytes per block, CPU decoder) are its entry in QUANT_TYPES (src/model/gguf/quant-types.ts); its
 * GPU decoder is shaders/quant_<dtype>.wgsl. Kernels that read one: matmul's B operand,
 * gatherRows, asF32 (src/linalg/widen.ts).
 */
export type QuantDType = Lowercase<Exclude<BlockType, 'F32' | 'F16' | 'BF16'>>;

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32' | QuantDType;

/**
 * Host arrays matching each dtype (f16 and bf16 travel as raw bits: src/gpu/half.ts; quantized
 * tensors as their raw blocks).
 */
export type HostArrays = {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  i32: Int32Array;
  u32: Uint32Array;
} & Record<QuantDType, Uint8Array>;
export type HostArray = HostArrays[DType];

const QUANT_DTYPES = Object.values(QUANT_TYPES)
  .map((t) => t.name.toLowerCase())
  .filter((name): name is QuantDType => !['f32', 'f16', 'bf16'].includes(name));

/**
 * Bytes per element; for a quantized type blockBytes / blockSize, a fraction with a power-of-two
 * denominator, so n·BYTES_PER_ELEMENT is exact for any n.
 */
export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  i32: 4,
  u32: 4,
  ...(Object.fromEntries(
    QUANT_DTYPES.map((d) => [d, quantType(d).blockBytes / quantType(d).blockSize]),
  ) as Record<QuantDType, number>),
};

export function isQuantized(dtype: DType): dtype is QuantDType {
  return (QUANT_DTYPES as readonly DType[]).includes(dtype);
}

/** A quantized dtype's entry in the quant table. */
export function quantType(dtype: QuantDType): QuantType {
  return QUANT_TYPES[dtype.toUpperCase() as BlockType];
}

/** The dtype that keeps a GGUF tensor of a type as the file has it: F32 → f32, Q4_K → q4_k. */
export function dtypeOfGgml(type: GgmlType): DType {
  return type.toLowerCase() as DType;
}

/** The bytes a tensor's elements take (without the rounding up to a word). */
export function bytesOf(t: Tensor): number {
  return t.numel * BYTES_PER_ELEMENT[t.dtype];
}

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

function checkShape(shape: readonly number[], dtype: DType): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(
      `Invalid tensor shape ${JSON.stringify(shape)}: dimensions must be integers ≥ 0`,
    );
  }
  // Quantized rows are whole blocks (what the decoders' vec4 reads and gathers rely on), or whole
  // scale blocks of a type whose blocks span rows (NF4), the tensor then holding whole blocks.
  const quant = isQuantized(dtype) ? quantType(dtype) : undefined;
  const row = quant?.rowMultiple ?? quant?.blockSize ?? 1;
  if ((shape.at(-1) ?? 1) % row !== 0) {
    throw new ShapeError(
      `${dtype}${shapeString(shape)}: rows must hold a multiple of ${row} values`,
    );
  }
  if (quant && numel(shape) % quant.blockSize !== 0) {
    throw new ShapeError(
      `${dtype}${shapeString(shape)}: must hold whole blocks of ${quant.blockSize} values`,
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
  checkShape(shape, dtype);
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

/**
 * Copies host data into a new tensor. A quantized tensor's data are its raw blocks (a GGUF
 * tensor's bytes, `GgufFile.data(name)`, with shape GGUF's ne reversed).
 */
export function uploadTensor<D extends DType>(
  gpu: Gpu,
  data: HostArrays[D],
  shape: readonly number[],
  dtype: D,
  label = 'upload',
): Tensor {
  checkShape(shape, dtype);
  if (isQuantized(dtype)) {
    const bytes = numel(shape) * BYTES_PER_ELEMENT[dtype];
    if (data.byteLength !== bytes) {
      throw new ShapeError(
        `${label}: ${dtype}${shapeString(shape)} takes ${bytes} bytes, not ${data.byteLength}`,
      );
    }
  } else if (data.length !== numel(shape)) {
    throw new ShapeError(`${label}: ${data.length} values do not fill shape ${shapeString(shape)}`);
  }
  const t = createTensor(gpu, shape, dtype, label);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    gpu.device.queue.writeBuffer(t.buffer, 0, bytes);
  } else {
    // writeBuffer needs a multiple of 4 bytes: an odd count of halves gets one pad half,
    // quantized blocks of 18, 22, 34, 110 or 210 bytes up to 3 pad bytes.
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
  checkShape(shape, t.dtype);
  if (numel(shape) !== t.numel) {
    throw new ShapeError(`cannot view ${shapeString(t.shape)} as ${shapeString(shape)}`);
  }
  return { ...t, shape: [...shape] };
}
