// Inits that look at the user's data before training (../shared/DESIGN.md §4), from the
// statistics src/train/statistics.ts collects:
//   EVA (Paischer et al. 2024): A = the top right-singular vectors of a module's inputs (the top
//     eigenvectors of Σxᵀx), B = 0; ranks redistributed over modules by explained variance.
//   CorDA (Yang et al. 2024): SVD of W·C (C the damped input covariance) so the components are
//     ordered by how much they act on this data; the instruction-previewed mode (IPM) adapts the
//     largest r, the knowledge-preserved mode (KPM) the smallest r; the residual stays frozen.
//   LoRA-GA (Wang et al. 2024): SVD of the mean full-weight gradient G; A = top-r right vectors,
//     B = left vectors r+1…2r (PEFT's default "ArB2r"), both scaled by out^¼/√γ ("stable").
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { cholesky } from '../linalg/cpu/qr.ts';
import { mat, type Mat } from '../linalg/cpu/dense.ts';
import { matmul } from '../linalg/matmul.ts';
import { exactSvd, randomizedSvd } from '../linalg/svd.ts';
import { scaling, type AdaptedModule } from './config.ts';
import type { InitialFactors } from './init.ts';

/** EVA's candidate components per module: ρ·r of them compete for the rank budget. */
export const EVA_RHO = 2;
/** LoRA-GA's γ of the stable scaling (PEFT's default). */
const LORA_GA_GAMMA = 16;

/** Top eigenvectors (rows, q × in) and eigenvalues of a PSD covariance, with its trace. */
export interface Components {
  vectors: Float32Array;
  values: Float64Array;
  trace: number;
}

/** The top `count` eigenvectors and eigenvalues (EVA checks them after every batch). */
export async function topComponents(
  gpu: Gpu,
  covariance: Tensor,
  count: number,
  seed: number,
): Promise<Omit<Components, 'trace'>> {
  const n = covariance.shape[0];
  const q = Math.min(count, n);
  const svd = await randomizedSvd(gpu, covariance, { rank: q, oversample: 10, niter: 4, seed });
  try {
    const v = await readF32(gpu, svd.v); // n × q
    const vectors = new Float32Array(q * n);
    for (let j = 0; j < q; j++) for (let i = 0; i < n; i++) vectors[j * n + i] = v[i * q + j];
    return { vectors, values: svd.s };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}

/** tr(C): read once, when the components have settled (explained variance = λ / tr C). */
export async function covarianceTrace(gpu: Gpu, covariance: Tensor): Promise<number> {
  const n = covariance.shape[0];
  const c = await readF32(gpu, covariance);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += c[i * n + i];
  return trace;
}

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
export function evaFactors(gpu: Gpu, m: AdaptedModule, c: Components): InitialFactors {
  return {
    a: uploadTensor(gpu, c.vectors.slice(0, m.rank * m.in), [m.rank, m.in], 'f32', `${m.path} A`),
    b: uploadTensor(gpu, new Float32Array(m.out * m.rank), [m.out, m.rank], 'f32', `${m.path} B`),
  };
}

/**
 * C/c + δI with c = mean(diag C), δ from 0.01 (PEFT's CorDA) doubling until Cholesky succeeds
 * with a condition estimate (max/min diagonal of the factor, squared) below 1e6. Dividing by c
 * changes no direction but keeps A and B balanced: with C summed over thousands of tokens, C⁻¹
 * would make A tiny and B huge, and AdamW's equal-sized steps would then wreck A.
 */
function dampedCholesky(c: Float32Array, n: number): Mat {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += c[i * n + i] / n;
  const g = mat(
    n,
    n,
    Float64Array.from(c, (v) => v / Math.max(mean, 1e-30)),
  );
  for (let delta = 0.01; delta <= 100; delta *= 2) {
    const r = cholesky(g, delta);
    if (!r) continue;
    const diag = Array.from({ length: n }, (_, i) => Math.abs(r.data[i * n + i]));
    if ((Math.max(...diag) / Math.min(...diag)) ** 2 < 1e6) return r;
  }
  throw new Error('CorDA: the input covariance stays singular after damping');
}

/** Y = (RᵀR)⁻¹·X for an upper-triangular R (n × n) and X (n × k), by two triangular solves. */
function choleskySolve(r: Mat, x: Mat): Mat {
  const n = r.rows;
  const y = mat(n, x.cols, x.data);
  for (let c = 0; c < x.cols; c++) {
    for (let i = 0; i < n; i++) {
      let v = y.data[i * x.cols + c];
      for (let k = 0; k < i; k++) v -= r.data[k * n + i] * y.data[k * x.cols + c];
      y.data[i * x.cols + c] = v / r.data[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let v = y.data[i * x.cols + c];
      for (let k = i + 1; k < n; k++) v -= r.data[i * n + k] * y.data[k * x.cols + c];
      y.data[i * x.cols + c] = v / r.data[i * n + i];
    }
  }
  return y;
}

/**
 * CorDA: W·C = U·Σ·Vᵀ (C normalised and damped; exact SVD: KPM needs the bottom of the
 * spectrum), so W = U·Σ·(Vᵀ·C⁻¹);
 * B = U_r·√(Σ_r/s), A = √(Σ_r/s)·V_rᵀ·C⁻¹ for the largest (IPM) or smallest (KPM) r.
 */
export async function cordaFactors(
  gpu: Gpu,
  m: AdaptedModule,
  weight: Tensor,
  covariance: Tensor,
  mode: 'ipm' | 'kpm',
): Promise<{ a: Tensor; b: Tensor }> {
  const r = dampedCholesky(await readF32(gpu, covariance), m.in);
  const damped = new Float32Array(m.in * m.in);
  // RᵀR = C/c + δI, rebuilt so the SVD sees the same matrix the solve inverts.
  for (let i = 0; i < m.in; i++)
    for (let j = 0; j < m.in; j++) {
      let v = 0;
      for (let k = 0; k <= Math.min(i, j); k++) v += r.data[k * m.in + i] * r.data[k * m.in + j];
      damped[i * m.in + j] = v;
    }
  const c = uploadTensor(gpu, damped, [m.in, m.in], 'f32', `${m.path} C`);
  const wc = await run(gpu, (b) => matmul(b, weight, c));
  releaseTensor(gpu, c);
  const svd = await exactSvd(gpu, wc).finally(() => {
    releaseTensor(gpu, wc);
  });
  try {
    const u = await readF32(gpu, svd.u);
    const v = await readF32(gpu, svd.v);
    const k = svd.s.length;
    const from = mode === 'kpm' ? k - m.rank : 0;
    const root = Array.from(svd.s.subarray(from, from + m.rank), (s) => Math.sqrt(s / m.scale));
    const b = new Float32Array(m.out * m.rank);
    for (let o = 0; o < m.out; o++)
      for (let j = 0; j < m.rank; j++) b[o * m.rank + j] = u[o * k + from + j] * root[j];
    const vr = mat(m.in, m.rank);
    for (let i = 0; i < m.in; i++)
      for (let j = 0; j < m.rank; j++) vr.data[i * m.rank + j] = v[i * k + from + j];
    const y = choleskySolve(r, vr); // C⁻¹·V_r, in × r
    const a = new Float32Array(m.rank * m.in);
    for (let j = 0; j < m.rank; j++)
      for (let i = 0; i < m.in; i++) a[j * m.in + i] = root[j] * y.data[i * m.rank + j];
    return {
      a: uploadTensor(gpu, a, [m.rank, m.in], 'f32', `${m.path} A`),
      b: uploadTensor(gpu, b, [m.out, m.rank], 'f32', `${m.path} B`),
    };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}

/** LoRA-GA: from the randomized SVD of G (4r columns, 4 power iterations, as the paper). */
export async function loraGaFactors(
  gpu: Gpu,
  m: AdaptedModule,
  gradient: Tensor,
  seed: number,
): Promise<{ a: Tensor; b: Tensor }> {
  const r = m.rank;
  if (2 * r > Math.min(m.out, m.in))
    throw new RangeError(`LoRA-GA needs 2·rank ≤ ${Math.min(m.out, m.in)} for ${m.path}`);
  const q = Math.min(4 * r, m.out, m.in);
  const svd = await randomizedSvd(gpu, gradient, {
    rank: 2 * r,
    oversample: q - 2 * r,
    niter: 4,
    seed,
  });
  try {
    const scale = m.out ** 0.25 / Math.sqrt(LORA_GA_GAMMA);
    const u = await readF32(gpu, svd.u); // out × 2r
    const v = await readF32(gpu, svd.v); // in × 2r
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
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}
