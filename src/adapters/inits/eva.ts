// EVA (Paischer et al. 2024): A = the top right-singular vectors of a module's inputs (the top
// eigenvectors of Σxᵀx, components.ts), B = 0; ranks redistributed over modules by explained
// variance.
import type { Gpu } from '../../gpu/device.ts';
import { scaling, type AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';
import type { Components } from './components.ts';
import { withZeroB } from './zero-b.ts';

/**
 * EVA's rank redistribution: the budget Σ rₘ goes to the components with the largest explained
 * variance ratio λⱼ/tr(C) over all modules (each module keeps at least its first component, so
 * none disappears from the adapter). alpha follows the rank so the scaling is unchanged (PEFT's
 * adjust_scaling_factors).
 */
export function evaRanks(
  modules: readonly AdaptedModule[],
  components: ReadonlyMap<string, Components>,
  rslora: boolean,
): AdaptedModule[] {
  const budget = modules.reduce((n, m) => n + m.rank, 0);
  const ranks = new Map(modules.map((m) => [m.path, 1]));
  const candidates = modules.flatMap((m) => {
    const c = components.get(m.path)!;
    return Array.from(c.values.subarray(1), (value) => ({ path: m.path, ratio: value / c.trace }));
  });
  candidates.sort((x, y) => y.ratio - x.ratio);
  for (const { path } of candidates.slice(0, budget - modules.length))
    ranks.set(path, ranks.get(path)! + 1);
  return modules.map((m) => {
    const rank = ranks.get(m.path)!;
    const alpha = rslora ? m.alpha * Math.sqrt(rank / m.rank) : (m.alpha * rank) / m.rank;
    return { ...m, rank, alpha, scale: scaling(alpha, rank, rslora) };
  });
}

/** EVA: A = the module's top components, B = 0 (the output is unchanged at step 0). */
export function evaFactors(gpu: Gpu, m: AdaptedModule, c: Components): Factors {
  return withZeroB(gpu, c.vectors.slice(0, m.rank * m.in), m);
}
