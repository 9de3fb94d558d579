// The GPU entrywise merge (shaders/merge.wgsl) against its CPU reference on random tasks of
// awkward sizes, for every sparsification and consensus rule; exact keep counts; seeded draws.
import { describe, expect, it } from 'vitest';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { maxScaledError } from '../linalg/compare.ts';
import { gaussian } from '../linalg/random.ts';
import { useGpu } from '../testing/gpu.ts';
import { mergeEntrywiseCpu } from './cpu/entrywise.ts';
import {
  mergeEntrywise,
  PLAIN_SUM,
  type Consensus,
  type EntrywiseTask,
  type Sparsify,
} from './entrywise.ts';

const gpu = useGpu();
const ROWS = 37;
const COLS = 53;

function randomTasks(k: number, seed: number): Float32Array[] {
  return Array.from({ length: k }, (_, t) => gaussian(ROWS * COLS, seed + t));
}

async function onGpu(xs: Float32Array[], tasks: EntrywiseTask[], c: Consensus) {
  const stacked = new Float32Array(xs.length * ROWS * COLS);
  xs.forEach((x, i) => {
    stacked.set(x, i * x.length);
  });
  const t = uploadTensor(gpu(), stacked, [xs.length, ROWS, COLS], 'f32', 'tasks');
  try {
    const out = await mergeEntrywise(gpu(), t, tasks, c, COLS);
    try {
      return await readF32(gpu(), out);
    } finally {
      releaseTensor(gpu(), out);
    }
  } finally {
    releaseTensor(gpu(), t);
  }
}

const SPARSIFY: Sparsify[] = [
  { kind: 'none' },
  { kind: 'magnitude', density: 0.3 },
  { kind: 'outliers', density: 0.4, gamma: 0.05 },
  { kind: 'random', density: 0.6 },
  { kind: 'della', density: 0.5, epsilon: 0.2 },
];
const CONSENSUS: Consensus[] = [
  PLAIN_SUM,
  { elect: 'total', weighted: false, divisor: 'count' },
  { elect: 'frequency', weighted: false, divisor: 'count' },
  { elect: 'total', weighted: true, divisor: 'weights' },
];

describe('entrywise merge on the GPU matches the CPU reference', () => {
  const xs = randomTasks(3, 11);
  for (const sparsify of SPARSIFY)
    for (const consensus of CONSENSUS)
      it(`${sparsify.kind}, elect ${consensus.elect}, divide by ${consensus.divisor}`, async () => {
        const tasks = [0.7, -0.4, 1.3].map((weight, i) => ({ weight, sparsify, seed: 5 + i }));
        const gpuOut = await onGpu(xs, tasks, consensus);
        const cpuOut = mergeEntrywiseCpu(
          xs.map((x, i) => ({ x, task: tasks[i] })),
          consensus,
          COLS,
        );
        expect(maxScaledError(gpuOut, cpuOut)).toBeLessThan(1e-6);
        // Something was kept and something dropped, where the rule drops anything.
        const zeros = gpuOut.filter((v) => v === 0).length;
        expect(zeros).toBeLessThan(gpuOut.length);
        if (sparsify.kind !== 'none') expect(zeros).toBeGreaterThan(0);
      });
});

describe('sparsification rules', () => {
  const [x] = randomTasks(1, 3);
  const kept = async (sparsify: Sparsify, seed = 1) =>
    onGpu([x], [{ weight: 1, sparsify, seed }], PLAIN_SUM);

  it('magnitude keeps exactly ⌊density·n⌋ entries, the largest ones', async () => {
    const out = await kept({ kind: 'magnitude', density: 0.25 });
    const n = Math.floor(0.25 * x.length);
    expect(out.filter((v) => v !== 0)).toHaveLength(n);
    const smallestKept = Math.min(...out.filter((v) => v !== 0).map(Math.abs));
    const largestDropped = Math.max(
      ...Array.from(x)
        .filter((_, i) => out[i] === 0)
        .map(Math.abs),
    );
    expect(smallestKept).toBeGreaterThan(largestDropped);
  });

  it('breadcrumbs drops the outliers and keeps density below them', async () => {
    const out = await kept({ kind: 'outliers', density: 0.5, gamma: 0.1 });
    expect(out.filter((v) => v !== 0)).toHaveLength(Math.floor(0.5 * x.length));
    const largest = Math.max(...Array.from(x, Math.abs));
    expect(out[Array.from(x, Math.abs).indexOf(largest)]).toBe(0);
  });

  it('DARE is reproducible from its seed and keeps about density, rescaled', async () => {
    const a = await kept({ kind: 'random', density: 0.3 }, 7);
    const b = await kept({ kind: 'random', density: 0.3 }, 7);
    const c = await kept({ kind: 'random', density: 0.3 }, 8);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    const share = a.filter((v) => v !== 0).length / a.length;
    expect(share).toBeGreaterThan(0.25);
    expect(share).toBeLessThan(0.35);
    const i = a.findIndex((v) => v !== 0);
    expect(a[i]).toBeCloseTo(x[i] / 0.3, 5);
  });

  it('density 1 keeps everything (the identity)', async () => {
    for (const sparsify of [
      { kind: 'magnitude', density: 1 },
      { kind: 'random', density: 1 },
    ] as Sparsify[])
      expect(Array.from(await kept(sparsify))).toEqual(Array.from(x));
  });
});
