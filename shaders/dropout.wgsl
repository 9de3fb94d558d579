// Inverted dropout with a counter-based random mask: y[i] = x[i] / keep where hash(seed, i) < keep,
// else 0. The mask is a pure function of (seed, i), so the backward pass applies the same call
// to the incoming gradient, and a resumed run with the same seeds draws the same masks.
// Hash: PCG's output permutation (O'Neill 2014, as used for GPU hashing by Jarzynski & Olano 2020).

override WG: u32 = 256u;

struct Params {
  n: u32,
  seed: u32,
  keep: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  let u = f32(pcg(i ^ pcg(p.seed)) >> 8u) / 16777216.0;  // 24 random bits → [0, 1)
  y[i] = select(0.0, x[i] / p.keep, u < p.keep);
}
