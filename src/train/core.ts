// The r × r matrix C some adapters put between B and A, y += s·g·B·C·A·x: DyLoRA's per-step
// truncation (src/train/dylora.ts), and the trained core of SVFit, LoRA-SB, SORSA and LoLDU
// (src/adapters/inits/). g is a trained scalar gain where the init trains one (LoLDU's scale),
// else 1. The adapter term trains with B·(g·C) in B's place, recomputed after every change of B,
// C or g; the backward writes G = ∂L/∂(B·g·C), from which, with F = Bᵀ·G,
//   dB = G·(g·C)ᵀ,   dC = g·F ⊙ M,   dg = Σ F ⊙ C,
// M masking dC to the entries that train (SVFit: the diagonal). Entries outside M start at zero
// and get no gradient, so AdamW leaves them at zero.
import type { AdaptedModule } from '../adapters/config.ts';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, reshaped, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { binary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';

interface CoreModule {
  module: AdaptedModule;
  /** The adapter's own B [out × r]. */
  b: Tensor;
  /** C [r × r]. */
  c: Tensor;
  /** The gain g [1] and g·C, where the init trains a gain. */
  gain?: { g: Tensor; scaledC: Tensor };
  /** B·g·C: what the term uses in B's place. */
  effective: Tensor;
  /** G = ∂L/∂(B·g·C), where the backward writes B's gradient. */
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

/** What a module's core starts from and what of it trains. */
export interface CoreStart {
  /** C's start. */
  initial: (m: AdaptedModule) => Float32Array;
  /** M where C trains (SVFit's identity: the diagonal); absent where C is set from outside (DyLoRA). */
  trained?: (m: AdaptedModule) => Float32Array;
  /** A trained gain g, starting at 1. */
  gain?: boolean;
}

export class FactorCores {
  private constructor(
    private readonly gpu: Gpu,
    private readonly modules: Map<string, CoreModule>,
  ) {}

  /** C (and g) for every module, with B·g·C computed. */
  static async create(
    gpu: Gpu,
    modules: readonly AdaptedModule[],
    bs: ReadonlyMap<string, Tensor>,
    start: CoreStart,
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
          c: uploadTensor(gpu, start.initial(m), shape, 'f32', `${m.path} C`),
          gain: start.gain
            ? {
                g: uploadTensor(gpu, Float32Array.of(1), [1], 'f32', `${m.path} g`),
                scaledC: createTensor(gpu, shape, 'f32', `${m.path} g·C`),
              }
            : undefined,
          effective: createTensor(gpu, b.shape, 'f32', `${m.path} B·C`),
          gradEffective: createTensor(gpu, b.shape, 'f32', `${m.path} d(B·C)`),
          mask:
            start.trained && uploadTensor(gpu, start.trained(m), shape, 'f32', `${m.path} C mask`),
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

  gain(path: string): Tensor | undefined {
    return this.modules.get(path)?.gain?.g;
  }

  /** What the term uses in B's place. */
  effectiveB(path: string): Tensor | undefined {
    return this.modules.get(path)?.effective;
  }

  /** Where the backward writes B's gradient. */
  effectiveGrad(path: string): Tensor | undefined {
    return this.modules.get(path)?.gradEffective;
  }

  /** Sets C (and g, where given) of the modules given (by path); B·g·C follows with `recompute`. */
  set(values: ReadonlyMap<string, { core: Float32Array; gain?: Float32Array }>): void {
    for (const [path, { core, gain }] of values) {
      const e = this.modules.get(path);
      if (!e || core.length !== e.c.numel || (gain && (!e.gain || gain.length !== 1)))
        throw new RangeError(`the core of ${path} is missing or mis-shaped`);
      this.gpu.device.queue.writeBuffer(e.c.buffer, 0, core);
      if (gain && e.gain) this.gpu.device.queue.writeBuffer(e.gain.g.buffer, 0, gain);
    }
  }

  /** C and g (absent without one) of a module. */
  async read(path: string): Promise<{ core: Float32Array; gain?: Float32Array }> {
    const e = this.modules.get(path);
    if (!e) throw new Error(`${path} has no core`);
    const core = await readF32(this.gpu, e.c);
    return e.gain ? { core, gain: await readF32(this.gpu, e.gain.g) } : { core };
  }

  /** B·g·C again, after B, C or g changed. */
  async recompute(): Promise<void> {
    await run(this.gpu, (batch) => {
      for (const e of this.modules.values()) {
        if (e.gain) binary(batch, 'mul', e.c, e.gain.g, e.gain.scaledC);
        matmul(batch, e.b, e.gain?.scaledC ?? e.c, { into: e.effective });
      }
    });
  }

  /** dB = G·(g·C)ᵀ, dC = g·(Bᵀ·G) ⊙ M and dg = Σ (Bᵀ·G) ⊙ C into the gradients given. */
  async gradients(
    into: ReadonlyMap<string, { b?: Tensor; core?: Tensor; gain?: Tensor }>,
  ): Promise<void> {
    const scratch: Tensor[] = [];
    try {
      await run(this.gpu, (batch) => {
        for (const [path, e] of this.modules) {
          const g = into.get(path);
          const scaledC = e.gain?.scaledC ?? e.c;
          if (g?.b) matmul(batch, e.gradEffective, scaledC, { transB: true, into: g.b });
          const trainsCore = g?.core && e.mask;
          if (!trainsCore && !g?.gain) continue;
          const f = matmul(batch, e.b, e.gradEffective, { transA: true });
          scratch.push(f);
          if (g.core && e.mask) {
            const mask = e.gain ? binary(batch, 'mul', e.mask, e.gain.g) : e.mask;
            if (mask !== e.mask) scratch.push(mask);
            binary(batch, 'mul', f, mask, g.core);
          }
          if (g.gain) {
            const n = e.c.numel;
            matmul(batch, reshaped(f, [1, n]), reshaped(e.c, [n, 1]), {
              into: reshaped(g.gain, [1, 1]),
            });
          }
        }
      });
    } finally {
      releaseTensor(this.gpu, ...scratch);
    }
  }

  dispose(): void {
    for (const e of this.modules.values())
      releaseTensor(
        this.gpu,
        e.c,
        e.effective,
        e.gradEffective,
        ...(e.mask ? [e.mask] : []),
        ...(e.gain ? [e.gain.g, e.gain.scaledC] : []),
      );
    this.modules.clear();
  }
}
