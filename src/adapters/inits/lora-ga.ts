// LoRA-GA (Wang et al. 2024): SVD of the mean full-weight gradient G (from
// src/train/statistics.ts); A = top-r right vectors, B = left vectors r+1…2r (PEFT's default
// "ArB2r"), both scaled by out^¼/√γ ("stable"); the residual stays frozen.
import type { Gpu } from '../../gpu/device.ts';
import { readF32 } from '../../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../../gpu/tensor.ts';
import { randomizedSvd } from '../../linalg/svd.ts';
import type { AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';

/** LoRA-GA's γ of the stable scaling (PEFT's default). */
const LORA_GA_GAMMA = 16;

/**
 * The top `count` singular vectors of G [out × in] on the host — U [out × count] and
 * V [in × count] — by a randomized SVD with 4·rank columns and 4 power iterations, as the
 * LoRA-GA paper (also what LoRA-SB starts from).
 */
export async function gradientSingularVectors(
  gpu: Gpu,
  m: AdaptedModule,
  gradient: Tensor,
  count: number,
  seed: number,
): Promise<{ u: Float32Array; v: Float32Array }> {
  const q = Math.min(4 * m.rank, m.out, m.in);
  const svd = await randomizedSvd(gpu, gradient, {
    rank: count,
    oversample: q - count,
    niter: 4,
    seed,
  });
  try {
    return { u: await readF32(gpu, svd.u), v: await readF32(gpu, svd.v) };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}

/** LoRA-GA: from the gradient's top 2r singular vectors. */
export async function loraGaFactors(
  gpu: Gpu,
  m: AdaptedModule,
  gradient: Tensor,
  seed: number,
): Promise<Factors> {
  const r = m.rank;
  if (2 * r > Math.min(m.out, m.in))
    throw new RangeError(`LoRA-GA needs 2·rank ≤ ${Math.min(m.out, m.in)} for ${m.path}`);
  const { u, v } = await gradientSingularVectors(gpu, m, gradient, 2 * r, seed);
  const scale = m.out ** 0.25 / Math.sqrt(LORA_GA_GAMMA);
  const b = new Float32Array(m.out * r);
  for (let o = 0; o < m.out; o++)
    for (let j = 0; j < r; j++) b[o * r + j] = u[o * 2 * r + r + j] * scale;
  const a = new Float32Array(r * m.in);
  for (let j = 0; j < r; j++)
    for (let i = 0; i < m.in; i++) a[j * m.in + i] = v[i * 2 * r + j] * scale;
  return {
    a: uploadTensor(gpu, a, [r, m.in], 'f32', `${m.path} A`),
    b: uploadTensor(gpu, b, [m.out, r], 'f32', `${m.path} B`),
  };
}
