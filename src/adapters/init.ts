// Initial adapter factors for one module (../shared/DESIGN.md §4), on the GPU. The base-mutating
// inits (PiSSA, MiLoRA, OLoRA, CorDA, LoRA-GA) also return the residual W − s·B·A that replaces the frozen weight
// while training, so the model's output is unchanged at step 0; the original W stays untouched.
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { columns, mat, transpose } from '../linalg/cpu/dense.ts';
import { asF32 } from '../linalg/widen.ts';
import { readMat, uploadMat } from '../linalg/host.ts';
import { matmul } from '../linalg/matmul.ts';
import { qr } from '../linalg/qr.ts';
import { gaussian, seededRandom } from '../linalg/random.ts';
import { exactSvd, randomizedSvd, type SvdResult } from '../linalg/svd.ts';
import type { AdaptedModule, InitMethod } from './config.ts';
import { cordaFactors, evaFactors, loraGaFactors, type Components } from './data-inits.ts';

/** What the data-aware inits learned from the data, by module path (src/train/statistics.ts). */
export interface InitStatistics {
  /** EVA: each module's top input components. */
  components?: ReadonlyMap<string, Components>;
  /** CorDA: Σxᵀx of each module's inputs. */
  covariances?: ReadonlyMap<string, Tensor>;
  /** LoRA-GA: the mean full-weight gradient. */
  gradients?: ReadonlyMap<string, Tensor>;
}

function statistic<T>(map: ReadonlyMap<string, T> | undefined, m: AdaptedModule, init: string): T {
  const value = map?.get(m.path);
  if (value === undefined) throw new Error(`${init} needs statistics of the data for ${m.path}`);
  return value;
}

export interface InitialFactors {
  /** [rank × in] */
  a: Tensor;
  /** [out × rank] */
  b: Tensor;
  /** W − scale·B·A for base-mutating inits. */
  residual?: Tensor;
}

/**
 * A and B for `module` whose frozen weight is `weight` [out × in]. `seed` makes the random inits
 * reproducible (each module should get its own).
 */
export async function initFactors(
  gpu: Gpu,
  module: AdaptedModule,
  weight: Tensor,
  init: InitMethod,
  seed: number,
  statistics: InitStatistics = {},
): Promise<InitialFactors> {
  const { rank, in: n } = module;
  if (init === 'eva')
    return evaFactors(gpu, module, statistic(statistics.components, module, init));
  if (init === 'lora') {
    // PEFT: kaiming_uniform_(A, a=√5), i.e. U(±1/√in); B = 0.
    const random = seededRandom(seed);
    const bound = 1 / Math.sqrt(n);
    const a = Float32Array.from({ length: rank * n }, () => (2 * random() - 1) * bound);
    return withZeroB(gpu, a, module);
  }
  if (init === 'gaussian') {
    // PEFT: normal_(A, std=1/r); B = 0.
    return withZeroB(
      gpu,
      gaussian(rank * n, seed).map((v) => v / rank),
      module,
    );
  }
  // These read W in f32: a copy (widened if W is stored in half precision) that then becomes
  // the residual W − s·B·A.
  const w = await run(gpu, (b) => asF32(b, weight));
  let factors: { a: Tensor; b: Tensor };
  try {
    factors = await baseFactors(gpu, module, w, init, seed, statistics);
  } catch (e) {
    releaseTensor(gpu, w);
    throw e;
  }
  await run(gpu, (b) =>
    matmul(b, factors.b, factors.a, { alpha: -module.scale, beta: 1, into: w }),
  );
  return { ...factors, residual: w };
}

/** A and B of a base-mutating init from W (f32). */
async function baseFactors(
  gpu: Gpu,
  module: AdaptedModule,
  weight: Tensor,
  init: InitMethod,
  seed: number,
  statistics: InitStatistics,
): Promise<{ a: Tensor; b: Tensor }> {
  const { rank } = module;
  if (init === 'olora') {
    // Q, R = qr(W); B = Q[:, :r], A = R[:r]. Householder's first r columns of Q span W's first
    // r columns, so a tall-skinny QR of those gives Q_r and A = Q_rᵀ·W gives R[:r].
    const first = uploadMat(gpu, columns(await readMat(gpu, weight), 0, rank));
    const { q } = await qr(gpu, first);
    releaseTensor(gpu, first);
    const a = await run(gpu, (b) => matmul(b, q, weight, { transA: true }));
    return { a, b: q };
  }
  if (init === 'corda_ipm' || init === 'corda_kpm') {
    const covariance = statistic(statistics.covariances, module, init);
    return cordaFactors(gpu, module, weight, covariance, init === 'corda_ipm' ? 'ipm' : 'kpm');
  }
  if (init === 'lora_ga') {
    return loraGaFactors(gpu, module, statistic(statistics.gradients, module, init), seed);
  }
  return principalFactors(gpu, module, weight, init, seed);
}

function withZeroB(gpu: Gpu, a: Float32Array, module: AdaptedModule): InitialFactors {
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

/**
 * PiSSA (top r singular triplets; `pissa_niter_N` by randomized SVD) and MiLoRA (bottom r):
 * W ≈ U·S·Vᵀ, A = diag(√(S/s))·Vᵀ, B = U·diag(√(S/s)), as PEFT's pissa init.
 */
async function principalFactors(
  gpu: Gpu,
  module: AdaptedModule,
  weight: Tensor,
  init: InitMethod,
  seed: number,
): Promise<{ a: Tensor; b: Tensor }> {
  const { rank } = module;
  const niter = /^pissa_niter_(\d+)$/.exec(init);
  let svd: SvdResult;
  if (niter) svd = await randomizedSvd(gpu, weight, { rank, niter: Number(niter[1]), seed });
  else svd = await exactSvd(gpu, weight);
  try {
    const k = svd.s.length;
    const from = init === 'milora' ? k - rank : 0;
    const u = columns(await readMat(gpu, svd.u), from, from + rank);
    const v = columns(await readMat(gpu, svd.v), from, from + rank);
    const root = Array.from(svd.s.slice(from, from + rank), (s) => Math.sqrt(s / module.scale));
    const b = mat(
      u.rows,
      rank,
      u.data.map((x, i) => x * root[i % rank]),
    );
    const vt = transpose(v);
    const a = mat(
      rank,
      vt.cols,
      vt.data.map((x, i) => x * root[Math.floor(i / vt.cols)]),
    );
    return { a: uploadMat(gpu, a), b: uploadMat(gpu, b) };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}
