// Rotary position embedding, HF rotate_half convention, in place on x [tokens × heads × head_dim]:
// for token t at position pos0 + t % seq_len (packed training sequences restart at 0) and each
// head, the pair (j, j + half) of the head's first 2·half values (the rotary dims: all of them,
// or a partial rotary factor's share, the rest passing through) turns by the angle whose cos and
// sin the host tabulated in f64 (cos_sin [positions × half × 2], possibly scaled by an attention
// factor): WGSL's sin/cos are only accurate near [−π, π], and angles reach thousands of radians.
// sign = −1 turns the other way: the rotation's transpose, which is its backward pass.
// One invocation per (token, head, j), laid out by linearGrid.

override WG: u32 = 256u;

struct Params {
  tokens: u32,
  heads: u32,
  head_dim: u32,
  half: u32,
  pos0: u32,
  seq_len: u32,
  sign: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cos_sin: array<vec2f>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.tokens * p.heads * p.half) {
    return;
  }
  let j = i % p.half;
  let head_row = i / p.half;        // t · heads + h
  let t = head_row / p.heads;
  let base = head_row * p.head_dim;
  let cs = cos_sin[(p.pos0 + t % p.seq_len) * p.half + j] * vec2f(1.0, p.sign);
  let a = x[base + j];
  let b = x[base + j + p.half];
  x[base + j] = a * cs.x - b * cs.y;
  x[base + j + p.half] = b * cs.x + a * cs.y;
}
