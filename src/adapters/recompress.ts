// Bringing an adapter's modules back to a lower rank by SVD, without forming any m×n matrix:
// ΔW = s·B·A is a low-rank product, so its SVD comes from the QRs of B and Aᵀ and a small core
// (lowRankProductSvd). Keeping the top k triplets is the best rank-k approximation
// (Eckart–Young); what is dropped is reported as the fraction of ‖ΔW‖²_F lost. The result is
// written with alpha = r = k and no rsLoRA, so its scaling is 1.
import type { Gpu } from '../gpu/device.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { lowRankProductSvd } from '../linalg/svd.ts';
import type { ExportAdapter, ExportModule } from './peft.ts';
import { scaling } from './config.ts';

export interface Recompressed {
  adapter: ExportAdapter;
  /** Per module, the share of ‖ΔW‖²_F the truncation dropped. */
  lostEnergy: { path: string; fraction: number }[];
  /** The same over all modules together. */
  totalLostEnergy: number;
}

async function recompressModule(
  gpu: Gpu,
  m: ExportModule,
  s: number,
  k: number,
): Promise<{ module: ExportModule; kept: number; total: number }> {
  const b = uploadTensor(
    gpu,
    m.b.map((v) => v * s),
    [m.out, m.rank],
    'f32',
    `${m.path} s·B`,
  );
  const a = uploadTensor(gpu, m.a, [m.rank, m.in], 'f32', `${m.path} A`);
  try {
    const svd = await lowRankProductSvd(gpu, b, a);
    try {
      const u = await readF32(gpu, svd.u); // out × R
      const v = await readF32(gpu, svd.v); // in × R
      const r = svd.s.length;
      const root = Array.from(svd.s.slice(0, k), Math.sqrt);
      const newB = new Float32Array(m.out * k);
      for (let o = 0; o < m.out; o++)
        for (let j = 0; j < k; j++) newB[o * k + j] = u[o * r + j] * root[j];
      const newA = new Float32Array(k * m.in);
      for (let j = 0; j < k; j++)
        for (let i = 0; i < m.in; i++) newA[j * m.in + i] = root[j] * v[i * r + j];
      const energy = (values: Float64Array) => values.reduce((t, x) => t + x * x, 0);
      return {
        module: { ...m, rank: k, alpha: k, a: newA, b: newB },
        kept: energy(svd.s.slice(0, k)),
        total: energy(svd.s),
      };
    } finally {
      releaseTensor(gpu, svd.u, svd.v);
    }
  } finally {
    releaseTensor(gpu, a, b);
  }
}

/** Every module at rank min(k, its rank), scaling 1. */
export async function recompress(gpu: Gpu, e: ExportAdapter, k: number): Promise<Recompressed> {
  if (!(Number.isInteger(k) && k >= 1))
    throw new RangeError(`rank must be an integer ≥ 1, got ${k}`);
  const modules: ExportModule[] = [];
  const lostEnergy: Recompressed['lostEnergy'] = [];
  let kept = 0;
  let total = 0;
  for (const m of e.modules) {
    const rank = Math.min(k, m.rank);
    const done = await recompressModule(gpu, m, scaling(m.alpha, m.rank, e.rslora), rank);
    modules.push(done.module);
    lostEnergy.push({ path: m.path, fraction: done.total > 0 ? 1 - done.kept / done.total : 0 });
    kept += done.kept;
    total += done.total;
  }
  return {
    adapter: { ...e, modules, rank: k, alpha: k, rslora: false },
    lostEnergy,
    totalLostEnergy: total > 0 ? 1 - kept / total : 0,
  };
}
