// RMSNorm of each row: y[r, i] = x[r, i] · (offset + w[i]) / √(mean_i x[r, i]² + eps), x and y
// [rows × d] (offset 0, or 1 for Gemma's x·(1 + w)), and its backward pass for a frozen w: with
// r = 1/√(mean(x²) + eps) and w'_i = offset + w_i,
//   dx_i = r·w'_i·dy_i − x_i · r³ · Σ_j(w'_j·dy_j·x_j) / d.
// Two layouts of the same math (the helpers take a start and a stride):
//   main, backward:               one workgroup of WG invocations (a power of two) per row, laid
//                                 out by linearGrid; strided partial sums combined by a tree.
//   main_serial, backward_serial: one invocation per row, no barriers: on CPU implementations
//                                 (SwiftShader) a barrier costs ~0.4 µs per subgroup, which made
//                                 the tree 10× slower than plain loops on short rows.

override WG: u32 = 64u;

struct Params {
  rows: u32,
  d: u32,
  eps: f32,
  offset: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;

@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> pb: Params;

var<workgroup> partial: array<vec2f, WG>;

fn workgroup_row(wg: vec3u, nwg: vec3u) -> u32 {
  return wg.x + wg.y * nwg.x;
}

fn invocation_row(id: vec3u, nwg: vec3u) -> u32 {
  return id.x + id.y * nwg.x * WG;
}

/// Σ of v over the workgroup (every invocation gets it).
fn tree_sum(lid: u32, v: vec2f) -> vec2f {
  partial[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  return partial[0];
}

// ---- forward ----

fn squares(base: u32, start: u32, stride: u32) -> f32 {
  var acc = 0.0;
  for (var i = start; i < p.d; i += stride) {
    let v = x[base + i];
    acc = fma(v, v, acc);
  }
  return acc;
}

fn normalize(base: u32, start: u32, stride: u32, total: f32) {
  let scale = inverseSqrt(total / f32(p.d) + p.eps);
  for (var i = start; i < p.d; i += stride) {
    y[base + i] = x[base + i] * scale * (p.offset + w[i]);
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = workgroup_row(wg, nwg);
  if (row >= p.rows) {
    return;  // whole workgroup: barriers stay in uniform control flow
  }
  let base = row * p.d;
  let total = tree_sum(lid, vec2f(squares(base, lid, WG), 0.0)).x;
  normalize(base, lid, WG, total);
}

@compute @workgroup_size(WG)
fn main_serial(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = invocation_row(id, nwg);
  if (row < p.rows) {
    normalize(row * p.d, 0u, 1u, squares(row * p.d, 0u, 1u));
  }
}

// ---- backward ----

/// (Σ x², Σ w·dy·x) over a strided slice of the row.
fn backward_sums(base: u32, start: u32, stride: u32) -> vec2f {
  var acc = vec2f(0.0);
  for (var i = start; i < pb.d; i += stride) {
    let v = x[base + i];
    acc += vec2f(v * v, (pb.offset + w[i]) * dy[base + i] * v);
  }
  return acc;
}

fn backward_row(base: u32, start: u32, stride: u32, sums: vec2f) {
  let r = inverseSqrt(sums.x / f32(pb.d) + pb.eps);
  let c = r * r * r * sums.y / f32(pb.d);
  for (var i = start; i < pb.d; i += stride) {
    dx[base + i] = r * (pb.offset + w[i]) * dy[base + i] - c * x[base + i];
  }
}

@compute @workgroup_size(WG)
fn backward(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = workgroup_row(wg, nwg);
  if (row >= pb.rows) {
    return;
  }
  let base = row * pb.d;
  backward_row(base, lid, WG, tree_sum(lid, backward_sums(base, lid, WG)));
}

@compute @workgroup_size(WG)
fn backward_serial(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = invocation_row(id, nwg);
  if (row < pb.rows) {
    backward_row(row * pb.d, 0u, 1u, backward_sums(row * pb.d, 0u, 1u));
  }
}
