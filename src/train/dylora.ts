// DyLoRA (Valipour et al. 2023, "DyLoRA: Parameter-Efficient Tuning of Pre-trained Models using
// Dynamic Search-Free Low-Rank Adaptation"): each step trains the adapter truncated to a rank b
// drawn uniformly from 1…r — A's first b rows and B's first b columns, scaled as a rank-b LoRA
// (α/b, or α/√b with rsLoRA) — so every prefix of the components is a working adapter of its own,
// and the rank is chosen after training by cutting (`lora-studio truncate`): the cut adapter is a
// plain LoRA of rank b with the same alpha. Every component up to b is updated, not only the b-th
// (the paper's unfrozen form).
//
// The truncation is the core between B and A (src/train/core.ts): C = D diagonal with
// D_jj = s_b/s_r for j < b and 0 past b, so the term trains with B·D and dB = ∂L/∂(B·D)·D. That
// also leaves A's rows past b without gradient, since B·D's columns there are zero. Between steps
// C = I: evaluation, samples, checkpoints and the export see the full rank.
import type { AdaptedModule } from '../adapters/config.ts';
import { scaling } from '../adapters/config.ts';
import { uniform01 } from '../linalg/random.ts';

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
