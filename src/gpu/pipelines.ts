import { GpuError } from './errors.ts';
import type { ShaderLibrary } from './shaders.ts';

/** Which kernel to run: a WGSL file, its entry point and values for its `override` constants. */
export interface KernelSpec {
  shader: string;
  entryPoint?: string;
  constants?: Readonly<Record<string, number>>;
}

/** A compiled compute pipeline. `compiled` settles with the compile error, if any. */
export interface Kernel {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly compiled: Promise<GpuError | null>;
}

export function kernelLabel(spec: KernelSpec): string {
  const entry = spec.entryPoint ?? 'main';
  const constants = Object.entries(spec.constants ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${spec.shader}.${entry}${constants ? `{${constants}}` : ''}`;
}

/**
 * One pipeline per (shader, entry point, constants), created on first use.
 * Creation is synchronous so that recording a batch never awaits; compile
 * errors are captured in an error scope and reported by the batch that used it.
 */
export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly kernels = new Map<string, Kernel>();

  constructor(
    private readonly device: GPUDevice,
    private readonly shaders: ShaderLibrary,
  ) {}

  get(spec: KernelSpec): Kernel {
    const label = kernelLabel(spec);
    const cached = this.kernels.get(label);
    if (cached) return cached;

    const module = this.module(spec.shader);
    this.device.pushErrorScope('validation');
    const pipeline = this.device.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module, entryPoint: spec.entryPoint ?? 'main', constants: { ...spec.constants } },
    });
    const compiled = this.device.popErrorScope().then(async (error) => {
      if (!error) return null;
      const info = await module.getCompilationInfo();
      const lines = info.messages
        .filter((m) => m.type === 'error')
        .map((m) => `  shaders/${spec.shader}.wgsl:${m.lineNum}:${m.linePos} ${m.message}`);
      return new GpuError(
        [`pipeline creation failed: ${error.message}`, ...lines].join('\n'),
        label,
        'validation',
      );
    });
    const kernel = { label, pipeline, compiled };
    this.kernels.set(label, kernel);
    return kernel;
  }

  get size(): number {
    return this.kernels.size;
  }

  private module(shader: string): GPUShaderModule {
    let module = this.modules.get(shader);
    if (!module) {
      module = this.device.createShaderModule({ label: shader, code: this.shaders(shader) });
      this.modules.set(shader, module);
    }
    return module;
  }
}
