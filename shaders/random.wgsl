// Counter-based random draws, shared by dropout (dropout.wgsl) and the merges' DARE/DELLA
// (merge.wgsl): a pure function of (seed, i), so a mask can be drawn again — forward and backward,
// after a resume, on the CPU reference (src/linalg/random.ts) — and is the same every time.
// Hash: PCG's output permutation (O'Neill 2014, as used for GPU hashing by Jarzynski & Olano 2020).

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

/** Draw i of the stream `seed`, uniform in [0, 1) from 24 random bits. */
fn uniform01(seed: u32, i: u32) -> f32 {
  return f32(pcg(i ^ pcg(seed)) >> 8u) / 16777216.0;
}
