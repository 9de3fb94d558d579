// The r × r matrix C some adapters put between B and A, y += s·B·C·A·x: DyLoRA's per-step
// truncation (src/train/dylora.ts) and SVFit's trained shifts of the top singular values
// (src/adapters/inits/svfit.ts). The adapter term trains with B·C in B's place, recomputed after
// every change of B or C; the backward writes G = ∂L/∂(B·C), from which
//   dB = G·Cᵀ   and   dC = (Bᵀ·G) ⊙ M,
// M masking dC to the entries that train (SVFit: the diagonal). Entries outside M start at zero
// and get no gradient, so AdamW leaves them at zero.
import type { AdaptedModule } from '../adapters/config.ts';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { binary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';

interface CoreModule {
  module: AdaptedModule;
  /** The adapter's own B [out × r]. */
  b: Tensor;
  /** C [r × r]. */
  c: Tensor;
  /** B·C: what the term uses in B's place. */
  effective: Tensor;
  /** G = ∂L/∂(B·C), where the backward writes B's gradient. */
  gradEffective: Tensor;
  /** M [r × r]: which entries of C train; absent when C does not train. */
  mask?: Tensor;
}

/** The identity of order r, row-major. */
export function identity(r: number): Float32Array {
  const d = new Float32Array(r * r);
  for (let j = 0; j < r; j++) d[j * r + j] = 1;
  return d;
}

export class FactorCores {
  private constructor(
    private readonly gpu: Gpu,
    private readonly modules: Map<string, CoreModule>,
  ) {}

  /**
   * C for every module from `initial`, with B·C computed; `trained` gives M where C trains
   * (SVFit's identity: the diagonal), absent where it is set from outside (DyLoRA).
   */
  static async create(
    gpu: Gpu,
    modules: readonly AdaptedModule[],
    bs: ReadonlyMap<string, Tensor>,
    initial: (m: AdaptedModule) => Float32Array,
    trained?: (m: AdaptedModule) => Float32Array,
  ): Promise<FactorCores> {
    const cores = new Map<string, CoreModule>();
    const made = new FactorCores(gpu, cores);
    try {
      for (const m of modules) {
        const b = bs.get(m.path);
        if (!b) throw new Error(`${m.path}: no B to multiply by its core`);
        const shape = [m.rank, m.rank];
        cores.set(m.path, {
          module: m,
          b,
          c: uploadTensor(gpu, initial(m), shape, 'f32', `${m.path} C`),
          effective: createTensor(gpu, b.shape, 'f32', `${m.path} B·C`),
          gradEffective: createTensor(gpu, b.shape, 'f32', `${m.path} d(B·C)`),
          mask: trained && uploadTensor(gpu, trained(m), shape, 'f32', `${m.path} C mask`),
        });
      }
      await made.recompute();
    } catch (e) {
      made.dispose();
      throw e;
    }
    return made;
  }

  core(path: string): Tensor | undefined {
    return this.modules.get(path)?.c;
  }

  /** What the term uses in B's place. */
  effectiveB(path: string): Tensor | undefined {
    return this.modules.get(path)?.effective;
  }

  /** Where the backward writes B's gradient. */
  effectiveGrad(path: string): Tensor | undefined {
    return this.modules.get(path)?.gradEffective;
  }

  /** Sets C of the modules given (by path); B·C follows with `recompute`. */
  set(values: ReadonlyMap<string, Float32Array>): void {
    for (const [path, data] of values) {
      const core = this.modules.get(path);
      if (!core || data.length !== core.c.numel)
        throw new RangeError(`the core of ${path} is missing or mis-shaped`);
      this.gpu.device.queue.writeBuffer(core.c.buffer, 0, data);
    }
  }

  async read(path: string): Promise<Float32Array> {
    const core = this.modules.get(path);
    if (!core) throw new Error(`${path} has no core`);
    return readF32(this.gpu, core.c);
  }

  /** B·C again, after B or C changed. */
  async recompute(): Promise<void> {
    await run(this.gpu, (batch) => {
      for (const e of this.modules.values()) matmul(batch, e.b, e.c, { into: e.effective });
    });
  }

  /** dB = G·Cᵀ and dC = (Bᵀ·G) ⊙ M into the gradients given (each where it trains). */
  async gradients(into: ReadonlyMap<string, { b?: Tensor; core?: Tensor }>): Promise<void> {
    const scratch: Tensor[] = [];
    try {
      await run(this.gpu, (batch) => {
        for (const [path, e] of this.modules) {
          const g = into.get(path);
          if (g?.b) matmul(batch, e.gradEffective, e.c, { transB: true, into: g.b });
          if (g?.core && e.mask) {
            const full = matmul(batch, e.b, e.gradEffective, { transA: true });
            scratch.push(full);
            binary(batch, 'mul', full, e.mask, g.core);
          }
        }
      });
    } finally {
      releaseTensor(this.gpu, ...scratch);
    }
  }

  dispose(): void {
    for (const e of this.modules.values())
      releaseTensor(this.gpu, e.c, e.effective, e.gradEffective, ...(e.mask ? [e.mask] : []));
    this.modules.clear();
  }
}
