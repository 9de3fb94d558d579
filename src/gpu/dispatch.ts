import { USAGE } from './buffers.ts';
import type { Gpu } from './device.ts';
import { GpuError, kindOf } from './errors.ts';
import type { Kernel } from './pipelines.ts';
import { createTensor, releaseTensor, type DType, type Tensor } from './tensor.ts';

/** Values for a kernel's uniform `Params` struct, in field order. */
export type Param = { u32: number } | { i32: number } | { f32: number };

/** Packs uniform fields as 4-byte words, padded to 16 bytes as uniform buffers require. */
export function packParams(fields: readonly Param[]): ArrayBuffer {
  const buffer = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buffer);
  fields.forEach((field, i) => {
    if ('u32' in field) view.setUint32(i * 4, field.u32, true);
    else if ('i32' in field) view.setInt32(i * 4, field.i32, true);
    else view.setFloat32(i * 4, field.f32, true);
  });
  return buffer;
}

/**
 * Splits a count of workgroups over x and y so neither exceeds the per-dimension limit.
 * Kernels recover the linear index as `wg.x + wg.y * num_workgroups.x` and guard the tail.
 */
export function linearGrid(groups: number, gpu: Gpu): [number, number] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / max);
  if (y > max) throw new GpuError(`${groups} workgroups exceed ${max}² per dispatch`, 'linearGrid');
  return [Math.ceil(groups / y), y];
}

interface Recorded {
  kernel: Kernel;
  /** Kernel label plus the shapes it ran on: what error messages name. */
  label: string;
  bindings: readonly Tensor[];
  params: ArrayBuffer | undefined;
  grid: readonly [number, number, number];
}

/**
 * Records many dispatches and submits them in one command encoder and compute pass.
 * Recording never awaits. `submit` captures validation and out-of-memory errors
 * (of the batch, its kernels' compilation and its allocations) and rethrows them
 * as a GpuError naming the kernels and shapes involved.
 */
export class Batch {
  private readonly recorded: Recorded[] = [];
  private readonly scratch: Tensor[] = [];
  private submitted = false;

  constructor(readonly gpu: Gpu) {}

  /**
   * Adds one dispatch. `bindings` are bound at @group(0) @binding(0…n−1) in order and the
   * params (when given) at @binding(n) as a uniform.
   */
  dispatch(
    kernel: Kernel,
    bindings: readonly Tensor[],
    grid: readonly [number, number?, number?],
    params?: ArrayBuffer,
    shapes = '',
  ): void {
    if (this.submitted) throw new Error('Batch already submitted');
    const [x, y = 1, z = 1] = grid;
    if (x === 0 || y === 0 || z === 0) return;
    const label = shapes ? `${kernel.label} ${shapes}` : kernel.label;
    this.recorded.push({ kernel, label, bindings, params, grid: [x, y, z] });
  }

  /** A temporary tensor released when the batch has been submitted. */
  temporary(shape: readonly number[], dtype: DType = 'f32', label = 'temporary'): Tensor {
    const t = createTensor(this.gpu, shape, dtype, label);
    this.scratch.push(t);
    return t;
  }

  get size(): number {
    return this.recorded.length;
  }

  async submit(): Promise<void> {
    if (this.submitted) throw new Error('Batch already submitted');
    this.submitted = true;
    const { device, pool } = this.gpu;
    const what = describe(this.recorded);
    const uniforms: GPUBuffer[] = [];

    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label: what });
    const pass = encoder.beginComputePass({ label: what });
    for (const r of this.recorded) {
      const entries: GPUBindGroupEntry[] = r.bindings.map((t, i) => ({
        binding: i,
        resource: { buffer: t.buffer, size: t.byteLength },
      }));
      if (r.params) {
        const uniform = pool.acquire(r.params.byteLength, USAGE.uniform, `${r.label} params`);
        device.queue.writeBuffer(uniform, 0, r.params);
        uniforms.push(uniform);
        entries.push({
          binding: r.bindings.length,
          resource: { buffer: uniform, size: r.params.byteLength },
        });
      }
      const bindGroup = device.createBindGroup({
        label: r.label,
        layout: r.kernel.pipeline.getBindGroupLayout(0),
        entries,
      });
      pass.setPipeline(r.kernel.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...r.grid);
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();

    // Reuse is safe once submitted: later writes to these buffers are queued after this work.
    for (const u of uniforms) pool.release(u);
    releaseTensor(this.gpu, ...this.scratch);

    const kernels = [...new Set(this.recorded.map((r) => r.kernel))];
    const compileErrors = await Promise.all(kernels.map((k) => k.compiled));
    const compileError = compileErrors.find((e) => e !== null);
    if (compileError) throw compileError;
    const allocationError = await pool.takeAllocationError();
    if (allocationError) throw allocationError;
    const error = (await oom) ?? (await validation);
    if (error) throw new GpuError(error.message, what, kindOf(error));
  }
}

function describe(recorded: readonly Recorded[]): string {
  const shown = recorded.slice(0, 3).map((r) => r.label);
  if (recorded.length > 3) shown.push(`…and ${recorded.length - 3} more`);
  return shown.join('; ') || 'empty batch';
}

/** Records with `fn` into a fresh batch, submits it and returns what `fn` returned. */
export async function run<T>(gpu: Gpu, fn: (batch: Batch) => T): Promise<T> {
  const batch = new Batch(gpu);
  const result = fn(batch);
  await batch.submit();
  return result;
}
