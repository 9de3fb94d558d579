// Entrywise merging of task tensors (TIES, DARE, magnitude pruning, Breadcrumbs, DELLA), after
// Yadav et al. 2023 (TIES), Yu et al. 2024 (DARE), Davari & Belilovsky 2024 (Breadcrumbs) and
// Deep et al. 2024 (DELLA). CPU reference: src/merge/cpu/entrywise.ts.
//
//   histogram: one pass of a radix select over |x| of one task: counts, among the entries whose
//              magnitude bits match `prefix` under `mask`, the byte at `shift`. Four passes find
//              the exact k-th largest magnitude (non-negative f32 bits order like the numbers).
//   combine:   out[i] = Σ_t w_t·v_t over the tasks that keep entry i and agree with the elected
//              sign, divided as asked; v_t is x_t[i] if bits(|x_t[i]|) ∈ [lo_t, hi_t] and a
//              counter-based draw u < keep_t (then divided by keep_t), else 0.
//
// Layout: tasks stacked row-major, x[t·n + i]. One invocation per entry; no barriers.

override WG: u32 = 256u;

// Flags of CombineParams.flags (src/merge/entrywise.ts writes them).
const ELECT: u32 = 1u;            // keep only values whose sign agrees with the elected sign
const ELECT_BY_COUNT: u32 = 2u;   // elect by the sum of signs (PEFT's "frequency"), not of values
const ELECT_WEIGHTED: u32 = 4u;   // elect on w·v (mergekit) rather than v (PEFT)
const DIVIDE_COUNT: u32 = 8u;     // divide by the number of agreeing values (PEFT)
const DIVIDE_WEIGHTS: u32 = 16u;  // divide by the sum of agreeing weights (mergekit)
const KEEP_PER_ENTRY: u32 = 32u;  // keep probabilities from `keep_probs` (DELLA), not the task's

struct Task {
  weight: f32,
  lo: u32,
  hi: u32,
  keep: f32,
  seed: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

fn element(id: vec3u, nwg: vec3u) -> u32 {
  return id.x + id.y * nwg.x * WG;
}

// ---- histogram ---------------------------------------------------------------

struct HistogramParams {
  n: u32,
  offset: u32,
  shift: u32,
  prefix: u32,
  mask: u32,
}

@group(0) @binding(0) var<storage, read> hx: array<f32>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>, 256>;
@group(0) @binding(2) var<uniform> hp: HistogramParams;

@compute @workgroup_size(WG)
fn histogram(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(id, nwg);
  if (i >= hp.n) {
    return;
  }
  let bits = bitcast<u32>(abs(hx[hp.offset + i]));
  if ((bits & hp.mask) == hp.prefix) {
    atomicAdd(&counts[(bits >> hp.shift) & 255u], 1u);
  }
}

// ---- combine -----------------------------------------------------------------

struct CombineParams {
  n: u32,
  tasks: u32,
  flags: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> task: array<Task>;
@group(0) @binding(2) var<storage, read> keep_probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> cp: CombineParams;

fn kept(t: u32, i: u32) -> f32 {
  let v = x[t * cp.n + i];
  let bits = bitcast<u32>(abs(v));
  if (bits < task[t].lo || bits > task[t].hi) {
    return 0.0;
  }
  var keep = task[t].keep;
  if ((cp.flags & KEEP_PER_ENTRY) != 0u) {
    keep = keep_probs[t * cp.n + i];
  }
  if (keep >= 1.0) {
    return v;
  }
  let u = uniform01(task[t].seed, i);
  return select(0.0, v / keep, u < keep);
}

fn elected(t: u32, v: f32) -> f32 {
  let e = select(v, task[t].weight * v, (cp.flags & ELECT_WEIGHTED) != 0u);
  return select(e, sign(e), (cp.flags & ELECT_BY_COUNT) != 0u);
}

@compute @workgroup_size(WG)
fn combine(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(id, nwg);
  if (i >= cp.n) {
    return;
  }
  let electing = (cp.flags & ELECT) != 0u;
  var majority = 1.0;
  if (electing) {
    var vote = 0.0;
    for (var t = 0u; t < cp.tasks; t++) {
      vote += elected(t, kept(t, i));
    }
    majority = select(-1.0, 1.0, vote >= 0.0);
  }
  var sum = 0.0;
  var count = 0.0;
  var weights = 0.0;
  for (var t = 0u; t < cp.tasks; t++) {
    let v = kept(t, i);
    if (v == 0.0 || (electing && sign(elected(t, v)) != majority)) {
      continue;
    }
    sum += task[t].weight * v;
    count += 1.0;
    weights += task[t].weight;
  }
  var divisor = 1.0;
  if ((cp.flags & DIVIDE_COUNT) != 0u) {
    divisor = max(count, 1.0);
  } else if ((cp.flags & DIVIDE_WEIGHTS) != 0u && abs(weights) >= 1e-8) {
    divisor = weights;
  }
  out[i] = sum / divisor;
}
