// Widens a half-precision tensor (f16, or bf16 when BF16) to f32: y[i] = x[i]. Built on
// half.wgsl: x is read as u32 words of two elements each.
// Dispatch: one invocation per word, WG per workgroup, laid out by linearGrid.

override BF16: bool = false;
override WG: u32 = 256u;

struct Params {
  n: u32, // elements
}

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn widen(w: u32) -> vec2f {
  if (BF16) {
    return bf16_pair(w);
  }
  return f16_pair(w);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let word = id.x + id.y * nwg.x * WG;
  let i = 2u * word;
  if (i >= p.n) {
    return;
  }
  let v = widen(x[word]);
  y[i] = v.x;
  if (i + 1u < p.n) {
    y[i + 1u] = v.y;
  }
}
