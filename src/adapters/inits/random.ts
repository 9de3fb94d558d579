// The inits that start from the unchanged model without reading W: A random, B = 0 (PEFT's
// default and its gaussian option).
import type { Gpu } from '../../gpu/device.ts';
import { uploadTensor } from '../../gpu/tensor.ts';
import { gaussian, seededRandom } from '../../linalg/random.ts';
import type { AdaptedModule } from '../config.ts';
import type { Factors, FactorsJob } from '../inits.ts';

/** A as given, B = 0: the adapter adds nothing at step 0. */
export function withZeroB(gpu: Gpu, a: Float32Array, module: AdaptedModule): Factors {
  return {
    a: uploadTensor(gpu, a, [module.rank, module.in], 'f32', `${module.path} A`),
    b: uploadTensor(
      gpu,
      new Float32Array(module.out * module.rank),
      [module.out, module.rank],
      'f32',
      `${module.path} B`,
    ),
  };
}

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
