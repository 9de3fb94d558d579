// Factors that add nothing at step 0: A as the init chose it, B = 0 (LoRA's and EVA's start).
import type { Gpu } from '../../gpu/device.ts';
import { uploadTensor } from '../../gpu/tensor.ts';
import type { AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';

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
