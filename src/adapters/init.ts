// Initial adapter factors for one module (docs/design.md §4), on the GPU, by the init's entry
// in the table (src/adapters/inits.ts). The base-mutating inits also return the residual
// W − s·B·A that replaces the frozen weight while training, so the model's output is unchanged at
// step 0; the original W stays untouched.
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { asF32 } from '../linalg/widen.ts';
import { matmul } from '../linalg/matmul.ts';
import { type AdaptedModule, type InitMethod, type OrthogonalBasis } from './config.ts';
import {
  DEFAULT_BASIS,
  initEntry,
  type Factors,
  type StatisticKind,
  type StatisticValues,
} from './inits.ts';

export interface InitialFactors extends Factors {
  /** W − scale·B·A (W − scale·B·C·A with a core) for base-mutating inits. */
  residual?: Tensor;
}

/**
 * A and B for `module` whose frozen weight is `weight` [out × in]. `seed` makes the random inits
 * reproducible (each module should get its own); `statistic` is what a data-aware init collected
 * for the module; `basis` is the shared basis orthogonal adaptation takes its slice of.
 */
export async function initFactors(
  gpu: Gpu,
  module: AdaptedModule,
  weight: Tensor,
  init: InitMethod,
  seed: number,
  statistic?: StatisticValues[StatisticKind],
  basis: OrthogonalBasis = DEFAULT_BASIS,
): Promise<InitialFactors> {
  const entry = initEntry(init);
  if (entry.statistic !== 'none' && statistic === undefined)
    throw new Error(`${init} needs statistics of the data for ${module.path}`);
  const job = { gpu, module, init, seed, basis, statistic };
  if (!entry.mutatesBase) return entry.factors({ ...job, weight });
  // These read W in f32: a copy (widened if W is stored in half precision) that then becomes
  // the residual W − s·B·A.
  const w = await run(gpu, (b) => asF32(b, weight));
  let factors: Factors;
  try {
    factors = await entry.factors({ ...job, weight: w });
  } catch (e) {
    releaseTensor(gpu, w);
    throw e;
  }
  const { core } = factors;
  const c = core && uploadTensor(gpu, core, [module.rank, module.rank], 'f32', 'initial core');
  const scratch: Tensor[] = c ? [c] : [];
  try {
    await run(gpu, (batch) => {
      const b = c ? matmul(batch, factors.b, c) : factors.b;
      if (c) scratch.push(b);
      matmul(batch, b, factors.a, { alpha: -module.scale, beta: 1, into: w });
    });
  } finally {
    releaseTensor(gpu, ...scratch);
  }
  return { ...factors, residual: w };
}
