// Autotuning of the matmul workgroup shape. The best shape depends on the device and on
// the problem's proportions (a rank-8 output wants few invocations along N, a square one
// more), so it is measured once per device and problem class and kept in `gpu.tuning`.
import type { Gpu } from '../gpu/device.ts';
import { Batch, run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { medianMs } from '../gpu/timing.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { maxRelativeError } from './compare.ts';
import {
  defaultTile,
  matmul,
  subgroupsFit,
  tuningKey,
  type MatmulOptions,
  type MatmulProblem,
  type MatmulTile,
} from './matmul.ts';
import { gaussian } from './random.ts';

export type NamedProblem = MatmulProblem & { name: string };

/**
 * Problems worth tuning ahead of use, and the benchmark's cases: squares, and the three
 * products of a LoRA layer (d = 288, rank 8, 2048 tokens).
 */
export const REPRESENTATIVE_PROBLEMS: readonly NamedProblem[] = [
  { name: '256²', M: 256, N: 256, K: 256, transA: false, transB: false },
  { name: '512²', M: 512, N: 512, K: 512, transA: false, transB: false },
  { name: '1024²', M: 1024, N: 1024, K: 1024, transA: false, transB: false },
  { name: 'x·Aᵀ [2048×288]·[288×8]', M: 2048, N: 8, K: 288, transA: false, transB: true },
  { name: 'h·Bᵀ [2048×8]·[8×288]', M: 2048, N: 288, K: 8, transA: false, transB: true },
  { name: 'gᵀ·x [288×2048]·[2048×8]', M: 288, N: 8, K: 2048, transA: true, transB: false },
];

/** Register blocking with 64–128 invocations in every proportion, and workgroup-memory tiling. */
export const TILE_CANDIDATES: readonly MatmulTile[] = [
  { wgX: 1, wgY: 64 },
  { wgX: 2, wgY: 32 },
  { wgX: 4, wgY: 16 },
  { wgX: 8, wgY: 8 },
  { wgX: 16, wgY: 4 },
  { wgX: 8, wgY: 16 },
  { wgX: 16, wgY: 16, shared: 1 },
];

/** The candidates this device can run: the list above, plus subgroup sharing where it fits. */
export function matmulCandidates(gpu: Gpu): MatmulTile[] {
  const subgroupTiles: MatmulTile[] = [
    { wgX: 4, wgY: 16, subgroups: 1 },
    { wgX: 8, wgY: 8, subgroups: 1 },
    { wgX: 16, wgY: 4, subgroups: 1 },
  ];
  return [...TILE_CANDIDATES, ...subgroupTiles.filter((t) => subgroupsFit(gpu, t))].filter((t) =>
    fits(gpu, t),
  );
}

function fits(gpu: Gpu, tile: MatmulTile): boolean {
  const { limits } = gpu;
  return (
    tile.wgX * tile.wgY <= limits.maxComputeInvocationsPerWorkgroup &&
    tile.wgX <= limits.maxComputeWorkgroupSizeX &&
    tile.wgY <= limits.maxComputeWorkgroupSizeY
  );
}

/**
 * Median ms per product of A and B (see medianMs): batches of products submitted together,
 * each batch waiting for a readback of its last result.
 */
export function timeMatmul(
  gpu: Gpu,
  a: Tensor,
  b: Tensor,
  options: MatmulOptions,
  reps: number,
  targetMs?: number,
): Promise<number> {
  return medianMs(
    async (iters) => {
      const batch = new Batch(gpu);
      const outs: Tensor[] = [];
      for (let i = 0; i < iters; i++) outs.push(matmul(batch, a, b, options));
      await batch.submit();
      await readF32(gpu, outs[outs.length - 1]);
      releaseTensor(gpu, ...outs);
    },
    reps,
    targetMs,
  );
}

/**
 * Times every candidate tile on this problem (median of 3 after warm-up) and remembers the
 * fastest for its class. A candidate whose result differs from the default tile's is skipped:
 * the subgroup kernel relies on how the device lays out subgroups, so it is checked, not trusted.
 * Returns the cached choice at once when the class is already tuned.
 */
export async function tuneMatmul(gpu: Gpu, p: MatmulProblem): Promise<MatmulTile> {
  const key = tuningKey(gpu, p);
  const cached = gpu.tuning.get(key) as MatmulTile | undefined;
  if (cached) return cached;
  const a = uploadTensor(gpu, gaussian(p.M * p.K, 1), p.transA ? [p.K, p.M] : [p.M, p.K], 'f32');
  const b = uploadTensor(gpu, gaussian(p.K * p.N, 2), p.transB ? [p.N, p.K] : [p.K, p.N], 'f32');
  const once = async (tile: MatmulTile) => {
    const c = await run(gpu, (batch) => matmul(batch, a, b, { ...p, tile }));
    const values = await readF32(gpu, c);
    releaseTensor(gpu, c);
    return values;
  };
  let best = { tile: defaultTile(p.N), ms: Infinity };
  try {
    const reference = await once(best.tile);
    const scale = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-30);
    for (const tile of matmulCandidates(gpu)) {
      if (maxRelativeError(await once(tile), reference, scale) > 1e-5) continue;
      const ms = await timeMatmul(gpu, a, b, { ...p, tile }, 3, 30);
      if (ms < best.ms) best = { tile, ms };
    }
  } finally {
    releaseTensor(gpu, a, b);
  }
  gpu.tuning.set(key, best.tile);
  return best.tile;
}
