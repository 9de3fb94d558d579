import { GpuError } from './errors.ts';
import type { ShaderLibrary } from './shaders.ts';

/** Which kernel to run: a WGSL file, its entry point and values for its `override` constants. */
export interface KernelSpec {
  shader: string;
  entryPoint?: string;
  constants?: Readonly<Record<string, number>>;
  /**
   * Shader files the kernel's file builds on, placed before it in the module (WGSL has no
   * includes): e.g. a subgroup variant reusing the helpers of its base kernel.
   */
  uses?: readonly string[];
  /** WGSL extensions to enable (`enable subgroups;`): only for devices with the feature. */
  enables?: readonly string[];
}

/** A compiled compute pipeline. `compiled` settles with the compile error, if any. */
export interface Kernel {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly compiled: Promise<GpuError | null>;
}

function sortedPairs(values: Readonly<Record<string, number>> | undefined): string {
  return Object.entries(values ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** e.g. `elementwise.unary{OP=3,WG=256}`; files a kernel builds on come first: `a+b.main`. */
export function kernelLabel(spec: KernelSpec): string {
  const constants = sortedPairs(spec.constants);
  const files = [...(spec.uses ?? []), spec.shader].join('+');
  return `${files}.${spec.entryPoint ?? 'main'}${constants ? `{${constants}}` : ''}`;
}

/** A module's source and where each of its lines came from, for compile errors. */
interface ModuleSource {
  key: string;
  code: string;
  /** `shaders/<file>.wgsl:<line>` for a line of `code` (1-based). */
  locate: (line: number) => string;
}

function moduleSource(spec: KernelSpec, library: ShaderLibrary): ModuleSource {
  const files = [...(spec.uses ?? []), spec.shader];
  const header = (spec.enables ?? []).map((e) => `enable ${e};\n`).join('');
  const starts: { file: string; line: number }[] = [];
  let code = header;
  let line = header.split('\n').length;
  for (const file of files) {
    const text = library(file).replace(/\n?$/, '\n');
    starts.push({ file, line });
    code += text;
    line += text.split('\n').length - 1;
  }
  return {
    key: `${[...(spec.enables ?? [])].join(',')}|${files.join('+')}`,
    code,
    locate(n) {
      const from = starts.findLast((s) => s.line <= n) ?? starts[0];
      return `shaders/${from.file}.wgsl:${n - from.line + 1}`;
    },
  };
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
    const key = `${(spec.enables ?? []).join(',')}|${label}`;
    const cached = this.kernels.get(key);
    if (cached) return cached;

    const source = moduleSource(spec, this.shaders);
    const module = this.module(source);
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
        .map((m) => `  ${source.locate(m.lineNum)}:${m.linePos} ${m.message}`);
      return new GpuError(
        [`pipeline creation failed: ${error.message}`, ...lines].join('\n'),
        label,
        'validation',
      );
    });
    const kernel = { label, pipeline, compiled };
    this.kernels.set(key, kernel);
    return kernel;
  }

  get size(): number {
    return this.kernels.size;
  }

  private module(source: ModuleSource): GPUShaderModule {
    let module = this.modules.get(source.key);
    if (!module) {
      module = this.device.createShaderModule({ label: source.key, code: source.code });
      this.modules.set(source.key, module);
    }
    return module;
  }
}
