/** A small seeded PRNG (mulberry32): reproducible random numbers from a seed, in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n standard normal values (Box–Muller) from a seed. */
export function gaussian(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - random()));
    const angle = 2 * Math.PI * random();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < n) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** PCG's output permutation of a u32: the hash behind shaders/random.wgsl, bit for bit. */
function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** random.wgsl's `uniform01(seed, i)`: draw i of the stream `seed`, in [0, 1), as an f32. */
export function uniform01(seed: number, i: number): number {
  return Math.fround(((pcg((i ^ pcg(seed)) >>> 0) >>> 8) >>> 0) / 16777216);
}

/** Whether element i survives a counter-based draw keeping a share `keep` (dropout, DARE). */
export function keeps(seed: number, i: number, keep: number): boolean {
  return uniform01(seed, i) < Math.fround(keep);
}
