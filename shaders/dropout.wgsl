// Inverted dropout with a counter-based random mask: y[i] = x[i] / keep where uniform01(seed, i)
// < keep, else 0 (random.wgsl, prepended). The mask is a pure function of (seed, i), so the
// backward pass applies the same call to the incoming gradient, and a resumed run with the same
// seeds draws the same masks.

override WG: u32 = 256u;

struct Params {
  n: u32,
  seed: u32,
  keep: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  y[i] = select(0.0, x[i] / p.keep, uniform01(p.seed, i) < p.keep);
}
