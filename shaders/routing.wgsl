// Routing between low-rank experts, token by token (src/routing/). Several adapters' factors are
// stacked into one term, A [R × in] and B [out × R], expert e owning the rank components
// j ∈ [offset[e], offset[e+1]); a gate scales each expert's block of h = x·Aᵀ per token, so the
// term adds Σ_e g_e(x)·B_e·A_e·x in one pair of products instead of E.
//
//   gate:     gates[t, e] from scores[t, e] (one invocation per token).
//             KIND 0: the softmax of the scores, renormalised over the top k (k = 0: all; k = 1
//             keeps the probability itself, as the Switch Transformer does), and probs[t, e] the
//             full softmax (the load-balancing loss reads it).
//             KIND 1: 1 on the k largest |scores| of the row, 0 elsewhere (FlyLoRA: the scores
//             are h itself and every rank component is an expert).
//             Ties go to the lower index, so the choice is deterministic.
//   apply:    out[t, j] = h[t, j] · gates[t·stride + e(j)]; stride 0: one gate row for every token
//             (learned scales). The backward applies the same gates to ∂L/∂out.
//   gate_grad: dgates[t·stride + e] (+)= Σ_{j ∈ block e} dout[t, j] · h[t, j]; with stride 0 the
//             sum also runs over every token (the gradient of a shared scale).
//   gate_backward (KIND 0): with S the chosen experts, g the gates and p the probabilities,
//             ∂L/∂score_i = g_i·dg_i − w_i·Σ_e g_e·dg_e + p_i·(c_i − Σ_e p_e·c_e)
//             with w = g for renormalised gates, w = p for top-1's
//             (the second term: coef c = ∂L_aux/∂p from balance; zeros without one).
//   balance:  per expert, the Switch-Transformer load-balancing loss L_aux = α·E·Σ_e f_e·P_e with
//             f_e the share of tokens choosing e (top-k, k = 0 counting the argmax; over k) and P_e
//             the mean probability: stats[e] = f_e, stats[E + e] = P_e, and
//             coef[e] = ∂L_aux/∂p[t, e] = α·E·f_e / T (f held constant, as the papers do).
//
// `blocks` holds the layout: offset[0 … E] and then e(j) for j < R.

override WG: u32 = 64u;
override KIND: u32 = 0u;

struct Params {
  rows: u32,      // tokens T
  experts: u32,   // E
  rank: u32,      // R = offset[E]
  stride: u32,    // gate row stride: E, or 0 for one shared row
  top_k: u32,     // 0: all experts
  accumulate: u32,
  alpha: f32,     // balance: the auxiliary loss's weight
}

// Each entry point binds only what it uses (pipelines use the automatic layout).
// gate and balance: scores (or probs) in, two outputs.
@group(0) @binding(0) var<storage, read> scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> first: array<f32>;
@group(0) @binding(2) var<storage, read_write> second: array<f32>;
@group(0) @binding(3) var<uniform> pg: Params;
// apply and gate_grad: two [T × R] (or gate) inputs, the layout, one output.
@group(0) @binding(0) var<storage, read> lhs: array<f32>;
@group(0) @binding(1) var<storage, read> rhs: array<f32>;
@group(0) @binding(2) var<storage, read> blocks: array<u32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<uniform> pa: Params;
// gate_backward.
@group(0) @binding(0) var<storage, read> bgates: array<f32>;
@group(0) @binding(1) var<storage, read> bprobs: array<f32>;
@group(0) @binding(2) var<storage, read> bdgates: array<f32>;
@group(0) @binding(3) var<storage, read> bcoef: array<f32>;
@group(0) @binding(4) var<storage, read_write> dscores: array<f32>;
@group(0) @binding(5) var<uniform> pb: Params;

fn index(id: vec3u, nwg: vec3u) -> u32 {
  return id.x + id.y * nwg.x * WG;
}

// What ranks expert e in the row starting at row0: its score for softmax routing (the same order
// as its probability), its magnitude for FlyLoRA's top-k of h.
fn key(row0: u32, e: u32) -> f32 {
  let v = scores[row0 + e];
  if (KIND == 1u) {
    return abs(v);
  }
  return v;
}

// Whether e is among the k highest keys of its row (k = 0 or k ≥ E: every expert).
fn chosen(row0: u32, e: u32, k: u32) -> bool {
  if (k == 0u || k >= pg.experts) {
    return true;
  }
  let v = key(row0, e);
  var above = 0u;
  for (var j = 0u; j < pg.experts; j++) {
    let u = key(row0, j);
    if (u > v || (u == v && j < e)) {
      above++;
    }
  }
  return above < k;
}

// gate: scores [T × E] → first = gates [T × E], second = probs [T × E] (KIND 0).
@compute @workgroup_size(WG)
fn gate(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = index(id, nwg);
  if (t >= pg.rows) {
    return;
  }
  let row0 = t * pg.experts;
  if (KIND == 1u) {
    for (var e = 0u; e < pg.experts; e++) {
      first[row0 + e] = select(0.0, 1.0, chosen(row0, e, pg.top_k));
    }
    return;
  }
  var m = scores[row0];
  for (var e = 1u; e < pg.experts; e++) {
    m = max(m, scores[row0 + e]);
  }
  var total = 0.0;
  for (var e = 0u; e < pg.experts; e++) {
    total += exp(scores[row0 + e] - m);
  }
  var kept = 0.0;
  for (var e = 0u; e < pg.experts; e++) {
    let prob = exp(scores[row0 + e] - m) / total;
    second[row0 + e] = prob;
    if (chosen(row0, e, pg.top_k)) {
      kept += prob;
    }
  }
  // Top-1 keeps the probability itself (Switch Transformer): renormalised it would be 1, and the
  // router would get no gradient from the loss.
  let norm = select(kept, 1.0, pg.top_k == 1u);
  for (var e = 0u; e < pg.experts; e++) {
    first[row0 + e] = select(0.0, second[row0 + e] / norm, chosen(row0, e, pg.top_k));
  }
}

// balance: scores = probs [T × E] → first = coef [E], second = stats [2E]. One invocation per
// expert.
@compute @workgroup_size(WG)
fn balance(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = index(id, nwg);
  if (e >= pg.experts) {
    return;
  }
  let k = max(pg.top_k, 1u);
  var count = 0.0;
  var mass = 0.0;
  for (var t = 0u; t < pg.rows; t++) {
    let row0 = t * pg.experts;
    if (chosen(row0, e, k)) {
      count += 1.0;
    }
    mass += scores[row0 + e];
  }
  let rows = f32(pg.rows);
  let load = count / (rows * f32(k));
  second[e] = load;
  second[pg.experts + e] = mass / rows;
  first[e] = pg.alpha * f32(pg.experts) * load / rows;
}

// apply: lhs = h [T × R], rhs = gates → result [T × R].
@compute @workgroup_size(WG)
fn apply(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(id, nwg);
  if (i >= pa.rows * pa.rank) {
    return;
  }
  let t = i / pa.rank;
  let e = blocks[pa.experts + 1u + i % pa.rank];
  result[i] = lhs[i] * rhs[t * pa.stride + e];
}

// gate_grad: lhs = dout [T × R], rhs = h [T × R] → result = dgates [(T, or 1 shared) × E].
@compute @workgroup_size(WG)
fn gate_grad(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(id, nwg);
  let shared_row = pa.stride == 0u;
  let rows_out = select(pa.rows, 1u, shared_row);
  if (i >= rows_out * pa.experts) {
    return;
  }
  let e = i % pa.experts;
  let t0 = select(i / pa.experts, 0u, shared_row);
  let t1 = select(t0 + 1u, pa.rows, shared_row);
  var sum = 0.0;
  for (var t = t0; t < t1; t++) {
    for (var j = blocks[e]; j < blocks[e + 1u]; j++) {
      sum += lhs[t * pa.rank + j] * rhs[t * pa.rank + j];
    }
  }
  if (pa.accumulate != 0u) {
    sum += result[i];
  }
  result[i] = sum;
}

// gate_backward: gates, probs, dgates [T × E] and coef [E] → dscores [T × E].
@compute @workgroup_size(WG)
fn gate_backward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = index(id, nwg);
  if (t >= pb.rows) {
    return;
  }
  let row0 = t * pb.experts;
  var through_gates = 0.0;
  var through_probs = 0.0;
  for (var e = 0u; e < pb.experts; e++) {
    through_gates += bgates[row0 + e] * bdgates[row0 + e];
    through_probs += bprobs[row0 + e] * bcoef[e];
  }
  // Renormalised gates move with the chosen ones only; top-1's probability with every score.
  let top1 = pb.top_k == 1u;
  for (var e = 0u; e < pb.experts; e++) {
    let spread = select(bgates[row0 + e], bprobs[row0 + e], top1);
    dscores[row0 + e] = bgates[row0 + e] * bdgates[row0 + e] - spread * through_gates
      + bprobs[row0 + e] * (bcoef[e] - through_probs);
  }
}
