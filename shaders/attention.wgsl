// Causal attention with grouped KV heads, for a decode/prefill over a KV cache or a training
// batch of packed sequences:
//   out[t, h] = Σ_s softmax_s(q[t, h] · k[s, g] · scale) · v[s, g],   g = h / (heads / kv_heads)
// over the keys s of t's sequence up to its position. Token t belongs to sequence t / seq_len
// (whose keys start at row (t / seq_len)·seq_len of k and v) at position pos0 + t % seq_len:
// a cache passes seq_len = tokens (one sequence whose first pos0 positions are cached), a
// training batch pos0 = 0 and its sequence length.
// q, out [tokens × heads × head_dim]; k, v [rows × kv_heads × head_dim]; lse [tokens × heads]
// receives log Σ_s exp(score), which the backward pass (attention_backward.wgsl) needs.
// One invocation per (token, head), laid out by linearGrid: a pass for the maximum score, then
// one accumulating exp(score − max)·v into `out`, normalised at the end (the numerically safe
// softmax without a per-invocation array sized by head_dim). Simple and exact; a tiled
// (flash-style) kernel is the later speed-up for long contexts.

override WG: u32 = 64u;

struct Params {
  tokens: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  pos0: u32,
  seq_len: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

fn score(q_base: u32, k_base: u32) -> f32 {
  var s = 0.0;
  for (var i = 0u; i < p.head_dim; i++) {
    s = fma(q[q_base + i], k[k_base + i], s);
  }
  return s * p.scale;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = id.x + id.y * nwg.x * WG;  // t · heads + h
  if (row >= p.tokens * p.heads) {
    return;
  }
  let t = row / p.heads;
  let h = row % p.heads;
  let g = h / (p.heads / p.kv_heads);
  let first = (t / p.seq_len) * p.seq_len;
  let last = first + p.pos0 + t % p.seq_len;
  let q_base = row * p.head_dim;
  let stride = p.kv_heads * p.head_dim;

  var best = -3.4e38;
  for (var s = first; s <= last; s++) {
    best = max(best, score(q_base, s * stride + g * p.head_dim));
  }
  for (var i = 0u; i < p.head_dim; i++) {
    out[q_base + i] = 0.0;
  }
  var total = 0.0;
  for (var s = first; s <= last; s++) {
    let kv_base = s * stride + g * p.head_dim;
    let e = exp(score(q_base, kv_base) - best);
    total += e;
    for (var i = 0u; i < p.head_dim; i++) {
      out[q_base + i] = fma(e, v[kv_base + i], out[q_base + i]);
    }
  }
  for (var i = 0u; i < p.head_dim; i++) {
    out[q_base + i] /= total;
  }
  lse[row] = best + log(total);
}
