import { seededRandom } from '../linalg/random.ts';

export { seededRandom };

/** n values uniform in [lo, hi). */
export function randomArray(random: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * random();
  return out;
}
