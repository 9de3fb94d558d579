// shaders/routing.wgsl against its f64 references (cpu.ts), on random shapes whose sizes are not
// multiples of the workgroup, with uneven expert blocks (one empty); and the references' gate
// backward and balance coefficients against finite differences.
import { describe, expect, it } from 'vitest';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { maxScaledError } from '../linalg/compare.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import {
  cpuApplyGates,
  cpuBalance,
  cpuGateGradients,
  cpuGates,
  cpuGatesBackward,
  gateRow,
} from './cpu.ts';
import {
  applyGates,
  balance,
  blocksOf,
  gateGradients,
  gates,
  gatesBackward,
  stackedRank,
  uploadBlocks,
  type GateKind,
} from './kernels.ts';

const gpu = useGpu();

async function onGpu<T>(
  record: (
    upload: (data: ArrayLike<number>, shape: number[]) => Tensor,
    keep: (t: Tensor) => Tensor,
    batch: Parameters<Parameters<typeof run>[1]>[0],
  ) => T,
): Promise<{ out: T; read: (t: Tensor) => Promise<Float32Array>; release: () => void }> {
  const tensors: Tensor[] = [];
  const keep = (t: Tensor) => {
    tensors.push(t);
    return t;
  };
  let out!: T;
  // Uploads made while recording are queue writes, which run before the batch's commands.
  const upload = (data: ArrayLike<number>, shape: number[]) =>
    keep(uploadTensor(gpu(), Float32Array.from(data), shape, 'f32'));
  await run(gpu(), (batch) => {
    out = record(upload, keep, batch);
  });
  return {
    out,
    read: (t) => readF32(gpu(), t),
    release: () => {
      releaseTensor(gpu(), ...tensors);
    },
  };
}

describe.each([
  [37, [3, 0, 5, 2], 2],
  [130, [4, 4, 4], 0],
  [5, [1, 1, 1, 1, 1, 1, 1], 3],
])('routing kernels, %i tokens, blocks %j, top-%i', (rows, ranks, topK) => {
  const blocks = blocksOf(ranks);
  const experts = ranks.length;
  const rank = stackedRank(blocks);
  const random = seededRandom(rows + experts);
  const scores = randomArray(random, rows * experts, -2, 2);
  const x = randomArray(random, rows * rank);
  const dGated = randomArray(random, rows * rank);
  const dGates = randomArray(random, rows * experts);

  it.each<GateKind>(['softmax', 'magnitude'])('%s gates match the reference', async (kind) => {
    const { out, read, release } = await onGpu((upload, keep, batch) => {
      const s = upload(scores, [rows, experts]);
      const g = gates(batch, s, kind, topK);
      return { gates: keep(g.gates), probs: keep(g.probs) };
    });
    try {
      const want = cpuGates(scores, experts, kind, topK);
      expect(maxScaledError(await read(out.gates), want.gates)).toBeLessThan(1e-6);
      if (kind === 'softmax')
        expect(maxScaledError(await read(out.probs), want.probs)).toBeLessThan(1e-6);
      const chosenPerRow = Array.from(
        { length: rows },
        (_, t) => want.gates.slice(t * experts, (t + 1) * experts).filter((g) => g > 0).length,
      );
      expect(new Set(chosenPerRow)).toEqual(
        new Set([topK === 0 ? experts : Math.min(topK, experts)]),
      );
    } finally {
      release();
    }
  });

  it.each([false, true])(
    'applying gates and their gradients match (shared row: %s)',
    async (shared) => {
      const gateValues = shared
        ? randomArray(random, experts)
        : randomArray(random, rows * experts);
      const previous = randomArray(random, shared ? experts : rows * experts);
      const { out, read, release } = await onGpu((upload, keep, batch) => {
        const layout = keep(uploadBlocks(gpu(), blocks, 'test'));
        const xs = upload(x, [rows, rank]);
        const g = upload(gateValues, [shared ? 1 : rows, experts]);
        const dg = upload(dGated, [rows, rank]);
        const into = upload(previous, [shared ? 1 : rows, experts]);
        return {
          gated: keep(applyGates(batch, xs, g, blocks, layout)),
          grad: keep(gateGradients(batch, dg, xs, blocks, layout)),
          accumulated: gateGradients(batch, dg, xs, blocks, layout, { into, accumulate: true }),
        };
      });
      try {
        expect(
          maxScaledError(await read(out.gated), cpuApplyGates(x, gateValues, blocks)),
        ).toBeLessThan(1e-6);
        const want = cpuGateGradients(dGated, x, blocks, shared);
        if (!shared) expect(maxScaledError(await read(out.grad), want)).toBeLessThan(1e-5);
        const sum = want.map((v, i) => v + previous[i]);
        expect(maxScaledError(await read(out.accumulated), sum)).toBeLessThan(1e-5);
      } finally {
        release();
      }
    },
  );

  it('the gates backward and the balance coefficients match', async () => {
    const ref = cpuGates(scores, experts, 'softmax', topK);
    const { out, read, release } = await onGpu((upload, keep, batch) => {
      const g = upload(ref.gates, [rows, experts]);
      const p = upload(ref.probs, [rows, experts]);
      const b = balance(batch, p, topK, 0.3);
      keep(b.coef);
      keep(b.stats);
      const d = keep(
        gatesBackward(batch, { gates: g, probs: p }, upload(dGates, [rows, experts]), b.coef, topK),
      );
      return { coef: b.coef, stats: b.stats, dScores: d };
    });
    try {
      const want = cpuBalance(ref.probs, experts, topK, 0.3);
      expect(maxScaledError(await read(out.coef), want.coef)).toBeLessThan(1e-6);
      expect(
        maxScaledError(await read(out.stats), [...want.load, ...want.importance]),
      ).toBeLessThan(1e-6);
      const dScores = cpuGatesBackward(ref.gates, ref.probs, dGates, want.coef, topK);
      expect(maxScaledError(await read(out.dScores), dScores)).toBeLessThan(1e-5);
    } finally {
      release();
    }
  });
});

describe('the references are the gradients they claim', () => {
  it('gate backward: ∂(Σ dG·gates + L_aux)/∂scores by finite differences, top-k and dense', () => {
    const random = seededRandom(5);
    for (const topK of [0, 1, 2]) {
      const rows = 6;
      const experts = 4;
      const scores = Float64Array.from(randomArray(random, rows * experts, -2, 2));
      const dGates = randomArray(random, rows * experts);
      const alpha = 0.7;
      const ref = cpuGates(scores, experts, 'softmax', topK);
      // The loads are held constant (they are counts), as the backward treats them.
      const { coef, load } = cpuBalance(ref.probs, experts, topK, alpha);
      const objective = (s: Float64Array) => {
        const { gates: g, probs } = cpuGates(s, experts, 'softmax', topK);
        let value = 0;
        for (let i = 0; i < g.length; i++) value += dGates[i] * g[i];
        for (let e = 0; e < experts; e++) {
          let mean = 0;
          for (let t = 0; t < rows; t++) mean += probs[t * experts + e] / rows;
          value += alpha * experts * load[e] * mean;
        }
        return value;
      };
      const analytic = cpuGatesBackward(ref.gates, ref.probs, dGates, coef, topK);
      for (let i = 0; i < scores.length; i++) {
        const eps = 1e-6;
        const plus = Float64Array.from(scores);
        plus[i] += eps;
        const minus = Float64Array.from(scores);
        minus[i] -= eps;
        expect(analytic[i]).toBeCloseTo((objective(plus) - objective(minus)) / (2 * eps), 6);
      }
    }
  });

  it('top-k keeps the k largest, renormalised (top-1: its probability); magnitude gates pick the largest |h|', () => {
    const top1 = gateRow([0.1, 2, -1, 1.5], 'softmax', 1);
    expect(top1.gates[1]).toBeCloseTo(top1.probs[1], 12);
    expect(top1.gates[1]).toBeLessThan(1);
    const { gates: g } = gateRow([0.1, 2, -1, 1.5], 'softmax', 2);
    expect(g[0]).toBe(0);
    expect(g[2]).toBe(0);
    expect(g[1] + g[3]).toBeCloseTo(1, 12);
    expect(g[1] / g[3]).toBeCloseTo(Math.exp(0.5), 12);
    expect(Array.from(gateRow([0.1, -3, 2, -0.5], 'magnitude', 2).gates)).toEqual([0, 1, 1, 0]);
  });
});
