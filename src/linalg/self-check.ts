// Every kernel family run on the GPU and compared with its CPU reference on a small,
// fixed problem. The studio shows the results (a user can see their GPU computes right),
// and the browser tests assert them in Chromium.
import type { Gpu } from '../gpu/device.ts';
import { run, type Batch } from '../gpu/dispatch.ts';
import { decodeHalf, encodeHalf, type HalfDType } from '../gpu/half.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { maxRelativeError } from './compare.ts';
import { readMat, uploadMat } from './host.ts';
import {
  frobenius,
  maxAbsDiff,
  multiply,
  orthogonalityError,
  transpose,
  type Mat,
} from './cpu/dense.ts';
import { affineCpu, unaryCpu } from './cpu/elementwise.ts';
import { conditioned, decaying, randomMat, withSpectrum } from './cpu/generate.ts';
import { matmulCpu } from './cpu/matmul.ts';
import { reduceRowsCpu } from './cpu/reduce.ts';
import { jacobiSvd } from './cpu/svd.ts';
import { affine, unary } from './elementwise.ts';
import { matmul, matmulShape } from './matmul.ts';
import { qr } from './qr.ts';
import { seededRandom } from './random.ts';
import { reduceAll } from './reduce.ts';
import { exactSvd, lowRankProductSvd, randomizedSvd, type SvdResult } from './svd.ts';

export interface SelfCheckResult {
  kernel: string;
  /** The problem it ran on, e.g. "100,003 values" or "500×40, κ = 10⁴". */
  problem: string;
  ok: boolean;
  /** The check's error measure (each says which in `measure`). */
  error: number;
  tolerance: number;
  measure: string;
  /** Wall time of the GPU part, including uploads and readbacks. */
  ms: number;
}

interface Check {
  kernel: string;
  problem: string;
  measure: string;
  tolerance: number;
  /** Runs on the GPU and returns the error against the reference. */
  error: (gpu: Gpu) => Promise<number>;
}

const N = 100_003;
const values = (() => {
  const random = seededRandom(1);
  return Float32Array.from({ length: N }, () => 8 * random() - 4);
})();

/** Records one elementwise/reduction op on `values` and compares it with `expected`. */
function vectorCheck(
  expected: Float32Array,
  floor: number,
  record: (b: Batch, x: Tensor) => Tensor,
) {
  return async (gpu: Gpu) => {
    const x = uploadTensor(gpu, values, [N], 'f32');
    const out = await run(gpu, (b) => record(b, x));
    const actual = await readF32(gpu, out);
    releaseTensor(gpu, x, out);
    return maxRelativeError(actual, expected, floor);
  };
}

/** Reads a matrix back and frees the tensor. */
async function download(gpu: Gpu, t: Tensor): Promise<Mat> {
  const m = await readMat(gpu, t);
  releaseTensor(gpu, t);
  return m;
}

/** ‖U·Σ·Vᵀ − A‖_F / ‖A‖_F, releasing the SVD's tensors. */
async function svdResidual(gpu: Gpu, svd: SvdResult, a: Mat): Promise<number> {
  const u = await download(gpu, svd.u);
  const v = await download(gpu, svd.v);
  for (let i = 0; i < u.rows; i++)
    for (let j = 0; j < u.cols; j++) u.data[i * u.cols + j] *= svd.s[j];
  return Math.max(
    maxAbsDiff(multiply(u, transpose(v)), a) / frobenius(a),
    orthogonalityError(u.cols ? v : u),
  );
}

function spectrumError(s: Float64Array, reference: Float64Array): number {
  return Math.max(...Array.from(s, (v, i) => Math.abs(v - reference[i]) / reference[0]));
}

/** matmul against its reference; B stored as `dtype` (the reference reads the same values). */
function matmulCheck(dtype: 'f32' | HalfDType): Check {
  return {
    kernel: dtype === 'f32' ? 'matmul' : `matmul, B in ${dtype}`,
    problem: '3 × [67×45]·[45×33], all transposes',
    measure: 'max error / max |C|',
    tolerance: 1e-5,
    error: async (gpu) => {
      let worst = 0;
      for (const [transA, transB] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const aShape = transA ? [3, 45, 67] : [3, 67, 45];
        const bShape = transB ? [3, 33, 45] : [3, 45, 33];
        const a = Float32Array.from(randomMat(3 * 45, 67, 1).data);
        let b: Float32Array = Float32Array.from(randomMat(3 * 45, 33, 2).data);
        const at = uploadTensor(gpu, a, aShape, 'f32');
        let bt: Tensor;
        if (dtype === 'f32') {
          bt = uploadTensor(gpu, b, bShape, 'f32');
        } else {
          const bits = encodeHalf(b, dtype);
          bt = uploadTensor(gpu, bits, bShape, dtype);
          b = decodeHalf(bits, dtype);
        }
        const ct = await run(gpu, (batch) => matmul(batch, at, bt, { transA, transB }));
        const actual = await readF32(gpu, ct);
        releaseTensor(gpu, at, bt, ct);
        const shape = matmulShape(aShape, bShape, transA, transB);
        const expected = matmulCpu(a, b, shape, { transA, transB });
        const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        worst = Math.max(worst, maxRelativeError(actual, expected, scale));
      }
      return worst;
    },
  };
}

const CHECKS: Check[] = [
  {
    kernel: 'elementwise silu',
    problem: '100,003 values',
    measure: 'max relative error',
    tolerance: 2e-6,
    error: vectorCheck(unaryCpu('silu', values), 1e-6, (b, x) => unary(b, 'silu', x)),
  },
  {
    kernel: 'elementwise affine',
    problem: '100,003 values',
    measure: 'max abs error',
    tolerance: 1e-6,
    error: vectorCheck(affineCpu(values, 0.5, -1), 1, (b, x) => affine(b, x, 0.5, -1)),
  },
  {
    kernel: 'reduce sum',
    problem: '100,003 values',
    measure: 'error / Σ|x|',
    tolerance: 1e-6,
    error: vectorCheck(
      reduceRowsCpu('sum', values, 1, N),
      values.reduce((s, v) => s + Math.abs(v), 0),
      (b, x) => reduceAll(b, 'sum', x),
    ),
  },
  {
    kernel: 'reduce max',
    problem: '100,003 values',
    measure: 'max abs error',
    tolerance: 0,
    error: vectorCheck(reduceRowsCpu('max', values, 1, N), 1, (b, x) => reduceAll(b, 'max', x)),
  },
  matmulCheck('f32'),
  matmulCheck('f16'),
  matmulCheck('bf16'),
  {
    kernel: 'QR',
    problem: '500×40, κ = 10⁴',
    measure: 'max(‖A − QR‖/‖A‖, |QᵀQ − I|)',
    tolerance: 5e-6,
    error: async (gpu) => {
      const a = withSpectrum(500, 40, conditioned(40, 1e4), 3);
      const at = uploadMat(gpu, a);
      const { q, r } = await qr(gpu, at);
      releaseTensor(gpu, at);
      const qm = await download(gpu, q);
      return Math.max(maxAbsDiff(multiply(qm, r), a) / frobenius(a), orthogonalityError(qm));
    },
  },
  {
    kernel: 'exact SVD',
    problem: '60×40',
    measure: 'max(σ error / σ₁, ‖A − UΣVᵀ‖/‖A‖, |UᵀU − I|, |VᵀV − I|)',
    tolerance: 1e-5,
    error: async (gpu) => {
      const a = randomMat(60, 40, 5);
      const at = uploadMat(gpu, a);
      const svd = await exactSvd(gpu, at);
      releaseTensor(gpu, at);
      return Math.max(spectrumError(svd.s, jacobiSvd(a).s), await svdResidual(gpu, svd, a));
    },
  },
  {
    kernel: 'randomized SVD',
    problem: '300×200, rank 8, 2 power iterations',
    measure: 'σ error / σ₁',
    tolerance: 1e-5,
    error: async (gpu) => {
      const a = withSpectrum(300, 200, decaying(80, 0.7), 8);
      const at = uploadMat(gpu, a);
      const svd = await randomizedSvd(gpu, at, { rank: 8, oversample: 8, niter: 2 });
      releaseTensor(gpu, at, svd.u, svd.v);
      return spectrumError(svd.s, jacobiSvd(a).s.slice(0, 8));
    },
  },
  {
    kernel: 'low-rank product SVD',
    problem: 'B 64×8 · A 8×48',
    measure: 'max(‖BA − UΣVᵀ‖/‖BA‖, |UᵀU − I|, |VᵀV − I|)',
    tolerance: 1e-5,
    error: async (gpu) => {
      const b = randomMat(64, 8, 6);
      const a = randomMat(8, 48, 7);
      const bt = uploadMat(gpu, b);
      const at = uploadMat(gpu, a);
      const svd = await lowRankProductSvd(gpu, bt, at);
      releaseTensor(gpu, bt, at);
      return svdResidual(gpu, svd, multiply(b, a));
    },
  },
];

export async function selfCheck(gpu: Gpu): Promise<SelfCheckResult[]> {
  const results: SelfCheckResult[] = [];
  for (const c of CHECKS) {
    const start = performance.now();
    const error = await c.error(gpu);
    results.push({
      kernel: c.kernel,
      problem: c.problem,
      measure: c.measure,
      tolerance: c.tolerance,
      error,
      ok: error <= c.tolerance,
      ms: performance.now() - start,
    });
  }
  return results;
}
