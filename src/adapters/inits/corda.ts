// CorDA (Yang et al. 2024): SVD of W·C (C the damped input covariance, from
// src/train/statistics.ts) so the components are ordered by how much they act on this data; the
// instruction-previewed mode (IPM) adapts the largest r, the knowledge-preserved mode (KPM) the
// smallest r; the residual stays frozen.
import type { Gpu } from '../../gpu/device.ts';
import { run } from '../../gpu/dispatch.ts';
import { readF32 } from '../../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../../gpu/tensor.ts';
import { cholesky } from '../../linalg/cpu/qr.ts';
import { mat, type Mat } from '../../linalg/cpu/dense.ts';
import { matmul } from '../../linalg/matmul.ts';
import { exactSvd } from '../../linalg/svd.ts';
import type { AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';

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
): Promise<Factors> {
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
