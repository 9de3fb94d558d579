// LayerNorm of each row (GPT-2), x and y [rows × d], with the biased variance as torch:
//   y_i = (x_i − μ) · r · w_i + b_i,   μ = mean(x),   r = 1/√(mean((x − μ)²) + eps)
// and its backward pass for frozen w and b: with g_i = w_i·dy_i,
//   dx_i = r · (g_i − Σ_j g_j / d − (x_i − μ) · r² · Σ_j g_j·(x_j − μ) / d).
// The variance is summed around the mean (a second pass) rather than as mean(x²) − μ², which
// cancels when |μ| ≫ the spread.
// The two layouts of rmsnorm.wgsl (see there): main, backward with a workgroup per row;
// main_serial, backward_serial with an invocation per row.

override WG: u32 = 64u;

struct Params {
  rows: u32,
  d: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;

@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

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
  let total = partial[0];
  // The next tree_sum overwrites partial: everyone must have read the total first.
  workgroupBarrier();
  return total;
}

// ---- forward ----

fn row_sum(base: u32, start: u32, stride: u32) -> f32 {
  var acc = 0.0;
  for (var i = start; i < p.d; i += stride) {
    acc += x[base + i];
  }
  return acc;
}

fn centred_squares(base: u32, start: u32, stride: u32, mean: f32) -> f32 {
  var acc = 0.0;
  for (var i = start; i < p.d; i += stride) {
    let c = x[base + i] - mean;
    acc = fma(c, c, acc);
  }
  return acc;
}

fn normalize(base: u32, start: u32, stride: u32, mean: f32, squares: f32) {
  let r = inverseSqrt(squares / f32(p.d) + p.eps);
  for (var i = start; i < p.d; i += stride) {
    y[base + i] = fma((x[base + i] - mean) * r, w[i], b[i]);
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
  let mean = tree_sum(lid, vec2f(row_sum(base, lid, WG), 0.0)).x / f32(p.d);
  let squares = tree_sum(lid, vec2f(centred_squares(base, lid, WG, mean), 0.0)).x;
  normalize(base, lid, WG, mean, squares);
}

@compute @workgroup_size(WG)
fn main_serial(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = invocation_row(id, nwg);
  if (row < p.rows) {
    let base = row * p.d;
    let mean = row_sum(base, 0u, 1u) / f32(p.d);
    normalize(base, 0u, 1u, mean, centred_squares(base, 0u, 1u, mean));
  }
}

// ---- backward ----

/// (Σ x, Σ w·dy) over a strided slice of the row.
fn backward_sums(base: u32, start: u32, stride: u32) -> vec2f {
  var acc = vec2f(0.0);
  for (var i = start; i < pb.d; i += stride) {
    acc += vec2f(x[base + i], w[i] * dy[base + i]);
  }
  return acc;
}

/// (Σ (x − μ)², Σ w·dy·(x − μ)) over a strided slice of the row.
fn backward_centred_sums(base: u32, start: u32, stride: u32, mean: f32) -> vec2f {
  var acc = vec2f(0.0);
  for (var i = start; i < pb.d; i += stride) {
    let c = x[base + i] - mean;
    acc += vec2f(c * c, w[i] * dy[base + i] * c);
  }
  return acc;
}

/// g_sum = Σ g; centred = (Σ (x − μ)², Σ g·(x − μ)).
fn backward_row(base: u32, start: u32, stride: u32, mean: f32, g_sum: f32, centred: vec2f) {
  let n = f32(pb.d);
  let r = inverseSqrt(centred.x / n + pb.eps);
  let g_mean = g_sum / n;
  let c = r * r * centred.y / n;
  for (var i = start; i < pb.d; i += stride) {
    dx[base + i] = r * (w[i] * dy[base + i] - g_mean - (x[base + i] - mean) * c);
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
  let sums = tree_sum(lid, backward_sums(base, lid, WG));
  let mean = sums.x / f32(pb.d);
  let centred = tree_sum(lid, backward_centred_sums(base, lid, WG, mean));
  backward_row(base, lid, WG, mean, sums.y, centred);
}

@compute @workgroup_size(WG)
fn backward_serial(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = invocation_row(id, nwg);
  if (row < pb.rows) {
    let base = row * pb.d;
    let sums = backward_sums(base, 0u, 1u);
    let mean = sums.x / f32(pb.d);
    backward_row(base, 0u, 1u, mean, sums.y, backward_centred_sums(base, 0u, 1u, mean));
  }
}
