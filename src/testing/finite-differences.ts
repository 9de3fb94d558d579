// Central finite differences of an f64 loss with respect to adapter factors (and the vectors of
// their variant, such as DoRA's magnitudes), compared with the analytic gradients the GPU
// computed: the proof that the backward pass is the true gradient.
import { VECTORS } from '../adapters/variants.ts';
import type { Gpu } from '../gpu/device.ts';
import { readF32 } from '../gpu/readback.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { FactorGradients } from '../train/backward.ts';
import type { CpuTerm } from '../model/cpu/reference.ts';
import { seededRandom } from './random.ts';

export interface GradientError {
  name: string;
  /** ‖g − g_fd‖ / ‖g_fd‖ over the sampled entries (absolute when g_fd ≈ 0). */
  error: number;
}

export async function finiteDifferenceErrors(
  gpu: Gpu,
  terms: ReadonlyMap<string, CpuTerm>,
  grads: ReadonlyMap<string, FactorGradients>,
  loss: () => number,
  samplesPerTensor = 6,
): Promise<GradientError[]> {
  const random = seededRandom(3);
  const errors: GradientError[] = [];
  for (const [path, term] of terms) {
    const grad = grads.get(path);
    if (!grad) throw new Error(`no gradient for ${path}`);
    // A frozen A (FFA-LoRA, orthogonal adaptation) has no gradient to check.
    const checked: [string, Float64Array, Tensor | undefined][] = [
      ...(grad.a ? [['lora_A', term.a, grad.a] as [string, Float64Array, Tensor]] : []),
      ['lora_B', term.b, grad.b],
    ];
    for (const v of VECTORS) {
      const values = term.variant?.vectors[v.field];
      if (values) checked.push([v.key, values, grad[v.field]]);
    }
    for (const [name, values, gradient] of checked) {
      if (!gradient) throw new Error(`no gradient for ${path}.${name}`);
      const analytic = await readF32(gpu, gradient);
      let diff = 0;
      let norm = 0;
      for (let k = 0; k < samplesPerTensor; k++) {
        const i = Math.floor(random() * values.length);
        const saved = values[i];
        const eps = 1e-5;
        values[i] = saved + eps;
        const plus = loss();
        values[i] = saved - eps;
        const minus = loss();
        values[i] = saved;
        const numeric = (plus - minus) / (2 * eps);
        diff += (analytic[i] - numeric) ** 2;
        norm += numeric ** 2;
      }
      const error = norm > 1e-12 ? Math.sqrt(diff / norm) : Math.sqrt(diff);
      errors.push({ name: `${path}.${name}`, error });
    }
  }
  return errors;
}
