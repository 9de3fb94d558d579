// Entrywise merging of K task tensors on the GPU (shaders/merge.wgsl): each task is sparsified
// (by magnitude, by magnitude without outliers, at random, or DELLA's rank-dependent draw), then
// the kept values are combined with optional TIES sign election and disjoint mean. Magnitude
// thresholds are exact order statistics found by a radix select over the f32 bits of |x|.
// The plan types and the rules that turn a density into order statistics are shared with the
// CPU reference (cpu/entrywise.ts), so both keep exactly the same entries.
import type { Gpu } from '../gpu/device.ts';
import { linearGrid, packParams, run } from '../gpu/dispatch.ts';
import { readF32, readTensor } from '../gpu/readback.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';

/** How one task tensor is thinned before combining. */
export type Sparsify =
  | { kind: 'none' }
  /** Keep the top `density` share by magnitude (TIES, magnitude pruning). */
  | { kind: 'magnitude'; density: number }
  /** Drop the top `gamma` share as outliers, then keep `density` below them (Breadcrumbs). */
  | { kind: 'outliers'; density: number; gamma: number }
  /** Keep each entry with probability `density`, rescaled by 1/density (DARE). */
  | { kind: 'random'; density: number }
  /** Keep with probability density ± epsilon by magnitude rank in its row, rescaled (DELLA). */
  | { kind: 'della'; density: number; epsilon: number };

export interface EntrywiseTask {
  weight: number;
  sparsify: Sparsify;
  /** Seed of this task's draws (random, della). */
  seed: number;
}

export interface Consensus {
  /** Sign election: none, by the sum of values (`total`) or of signs (`frequency`). */
  elect: 'none' | 'total' | 'frequency';
  /** Elect on w·v (mergekit) instead of v (PEFT). */
  weighted: boolean;
  /** After election: plain weighted sum, or divided by the agreeing count / weights. */
  divisor: 'none' | 'count' | 'weights';
}

export const PLAIN_SUM: Consensus = { elect: 'none', weighted: false, divisor: 'none' };

/** The largest f32 bit pattern of a non-negative number: keeps every magnitude. */
export const ALL_BITS = 0xffffffff;

/**
 * Which magnitudes a task keeps, as 1-based ranks from the largest: entries whose |v| lies
 * between the `loRank`-th and the `hiRank`-th largest (inclusive). `null` ranks mean "no
 * bound"; `keepNone` that nothing is kept. Counts follow PEFT/mergekit: ⌊density·n⌋ entries.
 */
export interface MagnitudeWindow {
  keepNone: boolean;
  loRank: number | null;
  hiRank: number | null;
}

export function magnitudeWindow(s: Sparsify, n: number): MagnitudeWindow {
  const all = { keepNone: false, loRank: null, hiRank: null };
  if (s.kind === 'magnitude') {
    const k = Math.floor(s.density * n);
    if (k === 0) return { keepNone: true, loRank: null, hiRank: null };
    return k >= n ? all : { keepNone: false, loRank: k, hiRank: null };
  }
  if (s.kind === 'outliers') {
    const target = Math.floor(s.density * n);
    if (target === 0) return { keepNone: true, loRank: null, hiRank: null };
    // mergekit's rule: when density + gamma > 1, fewer outliers are dropped.
    const top = Math.max(0, Math.min(Math.floor(s.gamma * n), n - target));
    return {
      keepNone: false,
      loRank: top + target >= n ? null : top + target,
      hiRank: top === 0 ? null : top + 1,
    };
  }
  return all;
}

/**
 * DELLA's keep probabilities: in each row, entries ranked by magnitude (ascending, ties by
 * position) get density − ε + 2ε·rank/(len − 1), so larger entries are kept more often.
 */
export function dellaKeepProbabilities(
  x: Float32Array,
  rowLength: number,
  density: number,
  epsilon: number,
): Float32Array {
  const probs = new Float32Array(x.length);
  const order = Array.from({ length: rowLength }, (_, i) => i);
  for (let row = 0; row < x.length; row += rowLength) {
    order.sort((i, j) => Math.abs(x[row + i]) - Math.abs(x[row + j]) || i - j);
    order.forEach((col, rank) => {
      const share = rowLength > 1 ? rank / (rowLength - 1) : 1;
      probs[row + col] = density - epsilon + 2 * epsilon * share;
    });
  }
  return probs;
}

/** A task's seed for one module: every (merge seed, module, task) draws its own mask. */
export function taskSeed(seed: number, module: number, task: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (module + 0x632be5ab), 0xc2b2ae35);
  h = Math.imul(h ^ (task + 0x2545f491), 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

/** The keep probability the kernel uses for a task (1 = no random drop). */
export function keepProbability(s: Sparsify): number {
  return s.kind === 'random' ? s.density : 1;
}

export function consensusFlags(c: Consensus, perEntryKeep: boolean): number {
  let flags = 0;
  if (c.elect !== 'none') flags |= 1;
  if (c.elect === 'frequency') flags |= 2;
  if (c.weighted) flags |= 4;
  if (c.divisor === 'count') flags |= 8;
  if (c.divisor === 'weights') flags |= 16;
  if (perEntryKeep) flags |= 32;
  return flags;
}

const WG = 256;

/** Bits of the k-th largest |x| among entries offset…offset+n of `stacked` (radix select). */
async function kthLargestBits(gpu: Gpu, stacked: Tensor, offset: number, n: number, k: number) {
  const kernel = gpu.pipelines.get({
    shader: 'merge',
    uses: ['random'],
    entryPoint: 'histogram',
    constants: { WG },
  });
  let prefix = 0;
  let mask = 0;
  let remaining = k;
  for (const shift of [24, 16, 8, 0]) {
    const counts = uploadTensor(gpu, new Uint32Array(256), [256], 'u32', 'radix counts');
    try {
      await run(gpu, (b) => {
        b.dispatch(
          kernel,
          [stacked, counts],
          linearGrid(Math.ceil(n / WG), gpu),
          packParams([
            { u32: n },
            { u32: offset },
            { u32: shift },
            { u32: prefix >>> 0 },
            { u32: mask >>> 0 },
          ]),
          `radix select ${n}`,
        );
      });
      const histogram = await readTensor(gpu, counts as Tensor & { dtype: 'u32' });
      let bin = 255;
      while (bin > 0 && remaining > histogram[bin]) remaining -= histogram[bin--];
      prefix |= bin << shift;
      mask |= 255 << shift;
    } finally {
      releaseTensor(gpu, counts);
    }
  }
  return prefix >>> 0;
}

/** [lo, hi] bit bounds of the magnitudes a task keeps. */
async function bounds(
  window: MagnitudeWindow,
  kth: (rank: number) => Promise<number>,
): Promise<[number, number]> {
  if (window.keepNone) return [1, 0];
  const lo = window.loRank === null ? 0 : await kth(window.loRank);
  const hi = window.hiRank === null ? ALL_BITS : await kth(window.hiRank);
  return [lo, hi];
}

/** The kernel's Task records: weight, lo, hi, keep, seed, padding (8 words each). */
export function packTasks(
  tasks: readonly EntrywiseTask[],
  windows: readonly [number, number][],
): Uint32Array {
  const words = new Uint32Array(tasks.length * 8);
  const floats = new Float32Array(words.buffer);
  tasks.forEach((t, i) => {
    floats[i * 8] = t.weight;
    words[i * 8 + 1] = windows[i][0];
    words[i * 8 + 2] = windows[i][1];
    floats[i * 8 + 3] = keepProbability(t.sparsify);
    words[i * 8 + 4] = t.seed >>> 0;
  });
  return words;
}

/**
 * Merges the K task tensors stacked in `stacked` ([K, …], each `rowLength` wide) into one
 * tensor of a task's shape. The caller owns the result.
 */
export async function mergeEntrywise(
  gpu: Gpu,
  stacked: Tensor,
  tasks: readonly EntrywiseTask[],
  consensus: Consensus,
  rowLength: number,
): Promise<Tensor> {
  const K = tasks.length;
  const n = stacked.numel / K;
  const windows = await Promise.all(
    tasks.map((t, i) =>
      bounds(magnitudeWindow(t.sparsify, n), (rank) =>
        kthLargestBits(gpu, stacked, i * n, n, rank),
      ),
    ),
  );
  const della = tasks.some((t) => t.sparsify.kind === 'della');
  let probs: Tensor;
  if (della) {
    const host = await readF32(gpu, stacked);
    const all = new Float32Array(K * n).fill(1);
    tasks.forEach((t, i) => {
      if (t.sparsify.kind !== 'della') return;
      const { density, epsilon } = t.sparsify;
      all.set(
        dellaKeepProbabilities(host.subarray(i * n, (i + 1) * n), rowLength, density, epsilon),
        i * n,
      );
    });
    probs = uploadTensor(gpu, all, [K * n], 'f32', 'della keep');
  } else {
    probs = uploadTensor(gpu, new Float32Array(1), [1], 'f32', 'no keep probabilities');
  }
  const records = uploadTensor(gpu, packTasks(tasks, windows), [K * 8], 'u32', 'merge tasks');
  try {
    return await run(gpu, (b) => {
      const out = createTensor(gpu, stacked.shape.slice(1), 'f32', 'merged');
      b.dispatch(
        gpu.pipelines.get({
          shader: 'merge',
          uses: ['random'],
          entryPoint: 'combine',
          constants: { WG },
        }),
        [stacked, records, probs, out],
        linearGrid(Math.ceil(n / WG), gpu),
        packParams([{ u32: n }, { u32: K }, { u32: consensusFlags(consensus, della) }]),
        `merge ${K}×${n}`,
      );
      return out;
    });
  } finally {
    releaseTensor(gpu, probs, records);
  }
}
