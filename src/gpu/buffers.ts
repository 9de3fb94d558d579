import { GpuError, kindOf } from './errors.ts';
import { formatBytes } from '../units.ts';

// GPUBufferUsage bit values fixed by the WebGPU spec; spelled out so this module
// loads before Node has installed the WebGPU globals.
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const UNIFORM = 0x40;
const STORAGE = 0x80;

/** Usages the runtime allocates with; every pooled buffer is one of these. */
export const USAGE = {
  storage: STORAGE | COPY_SRC | COPY_DST,
  uniform: UNIFORM | COPY_DST,
  readback: MAP_READ | COPY_DST,
} as const;

/** Released buffers kept for reuse beyond this are destroyed instead. */
const MAX_FREE_BYTES = 512 * 1024 * 1024;

/**
 * Recycles GPU buffers by (usage, size bucket). Buckets grow in quarter-powers of two
 * (256, …, 1024, 1280, 1536, 1792, 2048, …) so reuse wastes at most 25%.
 * Allocation errors (out of memory, over a limit) are captured per buffer and
 * surfaced by the next `Batch.submit` or readback with the tensor they concern.
 */
export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  private pendingErrors: Promise<GpuError | null>[] = [];
  /** Bytes of all live pooled buffers, in use or free. */
  allocatedBytes = 0;
  freeBytes = 0;

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const max = this.device.limits.maxBufferSize;
    if (bytes > max) {
      throw new GpuError(
        `needs a ${formatBytes(bytes)} buffer; this device allows at most ${formatBytes(max)}`,
        label,
        'out-of-memory',
      );
    }
    const size = Math.min(bucketSize(bytes), max - (max % 4));
    const key = `${usage}:${size}`;
    const reused = this.free.get(key)?.pop();
    if (reused) {
      this.freeBytes -= size;
      reused.label = label;
      return reused;
    }
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const buffer = this.device.createBuffer({ size, usage, label });
    const failures = [this.device.popErrorScope(), this.device.popErrorScope()];
    this.pendingErrors.push(
      Promise.all(failures).then(([validation, oom]) => {
        const e = oom ?? validation;
        return e
          ? new GpuError(`allocating ${formatBytes(size)}: ${e.message}`, label, kindOf(e))
          : null;
      }),
    );
    this.allocatedBytes += size;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    if (this.freeBytes + buffer.size > MAX_FREE_BYTES) {
      this.allocatedBytes -= buffer.size;
      buffer.destroy();
      return;
    }
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.free.get(key);
    if (list) list.push(buffer);
    else this.free.set(key, [buffer]);
    this.freeBytes += buffer.size;
  }

  /** The first allocation error since the last call, if any. */
  async takeAllocationError(): Promise<GpuError | null> {
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    const errors = await Promise.all(pending);
    return errors.find((e) => e !== null) ?? null;
  }

  /** Destroys every free buffer (in-use ones stay valid). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.allocatedBytes -= this.freeBytes;
    this.freeBytes = 0;
    this.free.clear();
  }

  /** Forgets everything; called when the device goes away. */
  clear(): void {
    this.trim();
    this.allocatedBytes = 0;
  }
}

export function bucketSize(bytes: number): number {
  if (bytes <= 256) return 256;
  const step = 2 ** Math.floor(Math.log2(bytes)) / 4;
  return Math.ceil(bytes / step) * step;
}
