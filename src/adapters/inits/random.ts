// The inits that start from the unchanged model without reading W: A random, B = 0 (PEFT's
// default and its gaussian option).
import { gaussian, seededRandom } from '../../linalg/random.ts';
import type { Factors, FactorsJob } from '../inits.ts';
import { withZeroB } from './zero-b.ts';

/** PEFT: kaiming_uniform_(A, a=√5), i.e. U(±1/√in); B = 0. */
export function kaimingUniformFactors({ gpu, module, seed }: FactorsJob<'none'>): Factors {
  const random = seededRandom(seed);
  const bound = 1 / Math.sqrt(module.in);
  const a = Float32Array.from(
    { length: module.rank * module.in },
    () => (2 * random() - 1) * bound,
  );
  return withZeroB(gpu, a, module);
}

/** PEFT: normal_(A, std=1/r); B = 0. */
export function gaussianFactors({ gpu, module, seed }: FactorsJob<'none'>): Factors {
  const { rank } = module;
  return withZeroB(
    gpu,
    gaussian(rank * module.in, seed).map((v) => v / rank),
    module,
  );
}
