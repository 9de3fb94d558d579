import { GpuError } from './errors.ts';
import type { ShaderLibrary } from './shaders.ts';

/** Which kernel to run: a WGSL file, its entry point and values for its `override` constants. */
export interface KernelSpec {
  shader: string;
  entryPoint?: string;
  constants?: Readonly<Record<string, number>>;
  /**
   * Module-scope `const` declarations prepended to the source, for values WGSL needs at
   * shader-creation time (overrides cannot size function-scope arrays, e.g. register tiles).
   */
  defines?: Readonly<Record<string, number>>;
}

function sortedPairs(values: Readonly<Record<string, number>> | undefined): string {
  return Object.entries(values ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** A compiled compute pipeline. `compiled` settles with the compile error, if any. */
export interface Kernel {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly compiled: Promise<GpuError | null>;
}

/** The defines as one line of WGSL consts (one line, so error line numbers shift by one). */
function prelude(defines: KernelSpec['defines']): string {
  const consts = Object.entries(defines ?? {}).map(([k, v]) => `const ${k} = ${v};`);
  return consts.length > 0 ? `${consts.join(' ')}\n` : '';
}

export function kernelLabel(spec: KernelSpec): string {
  const defines = sortedPairs(spec.defines);
  const constants = sortedPairs(spec.constants);
  return `${spec.shader}${defines ? `<${defines}>` : ''}.${spec.entryPoint ?? 'main'}${constants ? `{${constants}}` : ''}`;
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

    const module = this.module(spec.shader, spec.defines);
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
        .map((m) => {
          const line = m.lineNum - (prelude(spec.defines) ? 1 : 0);
          return `  shaders/${spec.shader}.wgsl:${line}:${m.linePos} ${m.message}`;
        });
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

  private module(shader: string, defines: KernelSpec['defines']): GPUShaderModule {
    const key = `${shader}<${sortedPairs(defines)}>`;
    let module = this.modules.get(key);
    if (!module) {
      module = this.device.createShaderModule({
        label: key,
        code: prelude(defines) + this.shaders(shader),
      });
      this.modules.set(key, module);
    }
    return module;
  }
}
