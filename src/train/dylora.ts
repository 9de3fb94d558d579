// DyLoRA (Valipour et al. 2023, "DyLoRA: Parameter-Efficient Tuning of Pre-trained Models using
// Dynamic Search-Free Low-Rank Adaptation"): each step trains the adapter truncated to a rank b
// drawn uniformly from 1…r — A's first b rows and B's first b columns, scaled as a rank-b LoRA
// (α/b, or α/√b with rsLoRA) — so every prefix of the components is a working adapter of its own,
// and the rank is chosen after training by cutting (`lora-studio truncate`): the cut adapter is a
// plain LoRA of rank b with the same alpha. Every component up to b is updated, not only the b-th
// (the paper's unfrozen form).
//
// On the GPU the truncation is B_b = B·D with D diagonal, D_jj = s_b/s_r for j < b and 0 past b:
// the term trains with B_b in B's place, and dB = dB_b·D. That also leaves A's rows past b without
// gradient, since B_b's columns there are zero. Outside a step D = I: evaluation, samples,
// checkpoints and the export see the full rank.
import type { AdaptedModule } from '../adapters/config.ts';
import { scaling } from '../adapters/config.ts';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { createTensor, releaseTensor, type Tensor } from '../gpu/tensor.ts';
import { matmul } from '../linalg/matmul.ts';
import { uniform01 } from '../linalg/random.ts';

interface NestedModule {
  module: AdaptedModule;
  /** The trained B [out × r]. */
  b: Tensor;
  /** D [r × r]: the step's truncation, I between steps. */
  d: Tensor;
  /** B·D: what the term uses in B's place. */
  bTruncated: Tensor;
  /** ∂L/∂(B·D), where the backward writes B's gradient. */
  gradTruncated: Tensor;
}

/** The rank each module trains at in a step: a seeded draw, so a resumed run takes the same. */
export function drawnRanks(
  modules: readonly AdaptedModule[],
  seed: number,
  step: number,
): number[] {
  const stream = (Math.imul(seed, 1_000_003) + step) >>> 0;
  return modules.map((m, i) => 1 + Math.floor(uniform01(stream, i) * m.rank));
}

/** D of a module truncated to rank b (b = r: the identity). */
export function truncation(module: AdaptedModule, b: number, rslora: boolean): Float32Array {
  const r = module.rank;
  const d = new Float32Array(r * r);
  const ratio = b === r ? 1 : scaling(module.alpha, b, rslora) / module.scale;
  for (let j = 0; j < b; j++) d[j * r + j] = ratio;
  return d;
}

export class NestedRanks {
  private constructor(
    private readonly gpu: Gpu,
    private readonly rslora: boolean,
    private readonly modules: Map<string, NestedModule>,
  ) {}

  /** The state of every module, between steps (D = I, B·D = B). */
  static async create(
    gpu: Gpu,
    modules: readonly AdaptedModule[],
    b: ReadonlyMap<string, Tensor>,
    rslora: boolean,
  ): Promise<NestedRanks> {
    const nested = new Map<string, NestedModule>();
    const state = new NestedRanks(gpu, rslora, nested);
    for (const m of modules) {
      const trained = b.get(m.path);
      if (!trained) throw new Error(`${m.path}: no B to truncate`);
      nested.set(m.path, {
        module: m,
        b: trained,
        d: createTensor(gpu, [m.rank, m.rank], 'f32', `${m.path} DyLoRA D`),
        bTruncated: createTensor(gpu, trained.shape, 'f32', `${m.path} B·D`),
        gradTruncated: createTensor(gpu, trained.shape, 'f32', `${m.path} d(B·D)`),
      });
    }
    await state.rest();
    return state;
  }

  /** What the term uses in B's place. */
  truncatedB(path: string): Tensor | undefined {
    return this.modules.get(path)?.bTruncated;
  }

  /** Where the backward writes B's gradient. */
  truncatedGrad(path: string): Tensor | undefined {
    return this.modules.get(path)?.gradTruncated;
  }

  /** Truncates every module to its drawn rank for one step; returns the ranks. */
  async draw(seed: number, step: number): Promise<number[]> {
    const entries = [...this.modules.values()];
    const ranks = drawnRanks(
      entries.map((e) => e.module),
      seed,
      step,
    );
    entries.forEach((e, i) => {
      this.gpu.device.queue.writeBuffer(e.d.buffer, 0, truncation(e.module, ranks[i], this.rslora));
    });
    await this.recompute();
    return ranks;
  }

  /** dB = ∂L/∂(B·D)·D (D is symmetric), into B's gradient; then the full rank again. */
  async gradients(grads: ReadonlyMap<string, Tensor>): Promise<void> {
    await run(this.gpu, (batch) => {
      for (const [path, e] of this.modules) {
        const into = grads.get(path);
        if (into) matmul(batch, e.gradTruncated, e.d, { into });
      }
    });
    await this.rest();
  }

  /** D = I and B·D = B: after every change of B, and between steps. */
  async rest(): Promise<void> {
    for (const e of this.modules.values())
      this.gpu.device.queue.writeBuffer(e.d.buffer, 0, truncation(e.module, e.module.rank, false));
    await this.recompute();
  }

  private async recompute(): Promise<void> {
    await run(this.gpu, (batch) => {
      for (const e of this.modules.values()) matmul(batch, e.b, e.d, { into: e.bTruncated });
    });
  }

  dispose(): void {
    for (const e of this.modules.values())
      releaseTensor(this.gpu, e.d, e.bTruncated, e.gradTruncated);
    this.modules.clear();
  }
}
