// Causal attention with grouped KV heads, for a decode/prefill over a KV cache or a training
// batch of packed sequences:
//   out[t, h] = Σ_s softmax_s(q[t, h] · k[s, g] · scale) · v[s, g],   g = h / (heads / kv_heads)
// over the keys s of t's sequence up to its position, or with a sliding window the last `window`
// of them (positions p − window + 1 … p; window 0: all). Token t belongs to sequence t / seq_len
// (whose keys start at row (t / seq_len)·seq_len of k and v) at position pos0 + t % seq_len:
// a cache passes seq_len = tokens (one sequence whose first pos0 positions are cached), a
// training batch pos0 = 0 and its sequence length.
// q, out [tokens × heads × head_dim]; k, v [rows × kv_heads × head_dim]; lse [tokens × heads]
// receives log Σ_s exp(score), which the backward pass (attention_backward.wgsl) needs.
// One invocation per (token, head), laid out by linearGrid, in one pass with an online softmax
// (running maximum, rescaled sum): q and the output row live in private arrays, so each key costs
// one read of k and one of v. head_dim ≤ MAX_HEAD_DIM (checked by the host). Simple and exact; a
// tiled (flash-style) kernel sharing k and v through workgroup memory is the later speed-up.

const MAX_HEAD_DIM = 128u;

override WG: u32 = 64u;
// The head size, fixed per pipeline: loops of constant length unroll and keep rows in registers.
override HEAD_DIM: u32 = 64u;

struct Params {
  tokens: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  pos0: u32,
  seq_len: u32,
  scale: f32,
  window: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = id.x + id.y * nwg.x * WG;  // t · heads + h
  if (row >= p.tokens * p.heads) {
    return;
  }
  let d = HEAD_DIM;
  let t = row / p.heads;
  let g = (row % p.heads) / (p.heads / p.kv_heads);
  let first = (t / p.seq_len) * p.seq_len;
  let last = first + p.pos0 + t % p.seq_len;
  var start = first;
  if (p.window > 0u && last + 1u - first > p.window) {
    start = last + 1u - p.window;
  }
  let q_base = row * d;
  let stride = p.kv_heads * d;

  var qv: array<f32, MAX_HEAD_DIM>;
  var acc: array<f32, MAX_HEAD_DIM>;
  for (var i = 0u; i < d; i++) {
    qv[i] = q[q_base + i] * p.scale;
    acc[i] = 0.0;
  }
  var best = -3.4e38;
  var total = 0.0;
  for (var s = start; s <= last; s++) {
    let kv_base = s * stride + g * d;
    var score = 0.0;
    for (var i = 0u; i < d; i++) {
      score = fma(qv[i], k[kv_base + i], score);
    }
    // Online softmax: when the maximum grows, rescale what was summed so far.
    let next_best = max(best, score);
    let rescale = exp(best - next_best);
    let e = exp(score - next_best);
    total = fma(total, rescale, e);
    for (var i = 0u; i < d; i++) {
      acc[i] = fma(acc[i], rescale, e * v[kv_base + i]);
    }
    best = next_best;
  }
  for (var i = 0u; i < d; i++) {
    out[q_base + i] = acc[i] / total;
  }
  lse[row] = best + log(total);
}
