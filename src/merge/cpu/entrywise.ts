// CPU reference of shaders/merge.wgsl's entrywise merge, written the obvious way: sort for the
// order statistics, loop for the rest. Draws use the same counter-based hash as the GPU, so
// DARE and DELLA masks are identical; sums are in f64 (the GPU's f32 agrees to ~1e-7).
import { keeps } from '../../linalg/random.ts';
import {
  ALL_BITS,
  dellaKeepProbabilities,
  keepProbability,
  magnitudeWindow,
  type Consensus,
  type EntrywiseTask,
} from '../entrywise.ts';

function magnitudeBits(x: Float32Array): Uint32Array {
  return new Uint32Array(Float32Array.from(x, Math.abs).buffer);
}

/** The kept (and rescaled) value of every entry of one task, 0 where dropped. */
function sparsified(x: Float32Array, task: EntrywiseTask, rowLength: number): Float64Array {
  const bits = magnitudeBits(x);
  const sorted = bits.slice().sort();
  const kth = (rank: number) => sorted[sorted.length - rank];
  const window = magnitudeWindow(task.sparsify, x.length);
  const lo = window.loRank === null ? 0 : kth(window.loRank);
  const hi = window.hiRank === null ? ALL_BITS : kth(window.hiRank);
  const s = task.sparsify;
  const probs =
    s.kind === 'della' ? dellaKeepProbabilities(x, rowLength, s.density, s.epsilon) : null;
  const constantKeep = Math.fround(keepProbability(s));
  return Float64Array.from(x, (v, i) => {
    if (window.keepNone || bits[i] < lo || bits[i] > hi) return 0;
    const keep = probs ? probs[i] : constantKeep;
    if (keep >= 1) return v;
    // The same hash as dropout: shaders/merge.wgsl's draw for entry i.
    return keeps(task.seed, i, keep) ? v / keep : 0;
  });
}

export function mergeEntrywiseCpu(
  tasks: readonly { x: Float32Array; task: EntrywiseTask }[],
  consensus: Consensus,
  rowLength: number,
): Float64Array {
  const kept = tasks.map(({ x, task }) => sparsified(x, task, rowLength));
  const weights = tasks.map(({ task }) => Math.fround(task.weight));
  const n = tasks[0].x.length;
  const out = new Float64Array(n);
  const electValue = (t: number, v: number) => {
    const e = consensus.weighted ? weights[t] * v : v;
    return consensus.elect === 'frequency' ? Math.sign(e) : e;
  };
  for (let i = 0; i < n; i++) {
    let majority = 1;
    if (consensus.elect !== 'none') {
      const vote = kept.reduce((s, k, t) => s + electValue(t, k[i]), 0);
      majority = vote >= 0 ? 1 : -1;
    }
    let sum = 0;
    let count = 0;
    let weightSum = 0;
    kept.forEach((k, t) => {
      const v = k[i];
      if (v === 0 || (consensus.elect !== 'none' && Math.sign(electValue(t, v)) !== majority))
        return;
      sum += weights[t] * v;
      count += 1;
      weightSum += weights[t];
    });
    let divisor = 1;
    if (consensus.divisor === 'count') divisor = Math.max(count, 1);
    else if (consensus.divisor === 'weights' && Math.abs(weightSum) >= 1e-8) divisor = weightSum;
    out[i] = sum / divisor;
  }
  return out;
}
