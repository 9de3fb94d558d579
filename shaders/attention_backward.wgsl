// Gradients of the causal attention in attention.wgsl (training batches: pos0 = 0), recomputing
// the probabilities from the saved log-sum-exp instead of storing the T×T matrix:
//   P[t, s] = exp(q_t · k_s · scale − lse_t),   dP[t, s] = dO_t · v_s,
//   dS[t, s] = P[t, s] · (dP[t, s] − dsum_t),   dsum_t = dO_t · O_t (computed by the caller),
//   dQ_t = scale · Σ_s dS[t, s] k_s,   dK_s = scale · Σ_t dS[t, s] q_t,   dV_s = Σ_t P[t, s] dO_t
// with t ranging over the later positions of s's sequence (within the sliding window, when there
// is one: t sees s while t − s < window) and the query heads of s's KV group.
// backward_q: one invocation per (token, head) writes its dQ row.
// backward_kv: one invocation per (token, kv head) writes its dK and dV rows, so no two
// invocations ever add into the same address (no atomics, deterministic sums).
// Rows being accumulated and reused live in private arrays (head_dim ≤ MAX_HEAD_DIM).

const MAX_HEAD_DIM = 128u;  // as in attention.wgsl

override WG: u32 = 64u;
// The head size, fixed per pipeline: loops of constant length unroll and keep rows in registers.
override HEAD_DIM: u32 = 64u;

struct Params {
  tokens: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  pos0: u32,   // unused here (always 0 in training); keeps the layout of attention.wgsl
  seq_len: u32,
  scale: f32,
  window: u32,  // 0: full causal
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> dsum: array<f32>;
@group(0) @binding(5) var<storage, read> d_out: array<f32>;

// backward_q's outputs
@group(0) @binding(6) var<storage, read_write> dq: array<f32>;
@group(0) @binding(7) var<uniform> pq: Params;

// backward_kv's outputs
@group(0) @binding(6) var<storage, read_write> dk: array<f32>;
@group(0) @binding(7) var<storage, read_write> dv: array<f32>;
@group(0) @binding(8) var<uniform> pkv: Params;

@compute @workgroup_size(WG)
fn backward_q(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = id.x + id.y * nwg.x * WG;  // t · heads + h
  if (row >= pq.tokens * pq.heads) {
    return;
  }
  let d = HEAD_DIM;
  let t = row / pq.heads;
  let g = (row % pq.heads) / (pq.heads / pq.kv_heads);
  var first = (t / pq.seq_len) * pq.seq_len;
  if (pq.window > 0u && t + 1u - first > pq.window) {
    first = t + 1u - pq.window;
  }
  let q_base = row * d;
  let stride = pq.kv_heads * d;
  var qv: array<f32, MAX_HEAD_DIM>;
  var dov: array<f32, MAX_HEAD_DIM>;
  var acc: array<f32, MAX_HEAD_DIM>;
  for (var i = 0u; i < d; i++) {
    qv[i] = q[q_base + i] * pq.scale;
    dov[i] = d_out[q_base + i];
    acc[i] = 0.0;
  }
  let row_lse = lse[row];
  let row_dsum = dsum[row];
  for (var s = first; s <= t; s++) {
    let kv_base = s * stride + g * d;
    var score = 0.0;
    var dp = 0.0;
    for (var i = 0u; i < d; i++) {
      score = fma(qv[i], k[kv_base + i], score);
      dp = fma(dov[i], v[kv_base + i], dp);
    }
    let ds = exp(score - row_lse) * (dp - row_dsum);
    for (var i = 0u; i < d; i++) {
      acc[i] = fma(ds, k[kv_base + i], acc[i]);
    }
  }
  for (var i = 0u; i < d; i++) {
    dq[q_base + i] = acc[i] * pq.scale;
  }
}

@compute @workgroup_size(WG)
fn backward_kv(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = id.x + id.y * nwg.x * WG;  // s · kv_heads + g
  if (row >= pkv.tokens * pkv.kv_heads) {
    return;
  }
  let d = HEAD_DIM;
  let s = row / pkv.kv_heads;
  let g = row % pkv.kv_heads;
  let group = pkv.heads / pkv.kv_heads;
  // The batch may end within its last sequence.
  var end = min((s / pkv.seq_len + 1u) * pkv.seq_len, pkv.tokens);
  if (pkv.window > 0u) {
    end = min(end, s + pkv.window);
  }
  let kv_base = row * d;
  var kv: array<f32, MAX_HEAD_DIM>;
  var vv: array<f32, MAX_HEAD_DIM>;
  var dk_acc: array<f32, MAX_HEAD_DIM>;
  var dv_acc: array<f32, MAX_HEAD_DIM>;
  for (var i = 0u; i < d; i++) {
    kv[i] = k[kv_base + i] * pkv.scale;
    vv[i] = v[kv_base + i];
    dk_acc[i] = 0.0;
    dv_acc[i] = 0.0;
  }
  for (var t = s; t < end; t++) {
    for (var j = 0u; j < group; j++) {
      let q_row = t * pkv.heads + g * group + j;
      let q_base = q_row * d;
      var score = 0.0;
      var dp = 0.0;
      for (var i = 0u; i < d; i++) {
        score = fma(q[q_base + i], kv[i], score);
        dp = fma(d_out[q_base + i], vv[i], dp);
      }
      let prob = exp(score - lse[q_row]);
      let ds = prob * (dp - dsum[q_row]);
      for (var i = 0u; i < d; i++) {
        dv_acc[i] = fma(prob, d_out[q_base + i], dv_acc[i]);
        dk_acc[i] = fma(ds, q[q_base + i], dk_acc[i]);
      }
    }
  }
  for (var i = 0u; i < d; i++) {
    dk[kv_base + i] = dk_acc[i] * pkv.scale;
    dv[kv_base + i] = dv_acc[i];
  }
}
