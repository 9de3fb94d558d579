// RMSNorm of each row: y[r, i] = x[r, i] · w[i] / √(mean_i x[r, i]² + eps), x and y [rows × d].
// One workgroup of WG invocations (a power of two) per row, laid out by linearGrid: each
// invocation sums the squares of a strided slice, the workgroup combines them in a tree.

override WG: u32 = 64u;

struct Params {
  rows: u32,
  d: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) {
    return;  // whole workgroup: barriers stay in uniform control flow
  }
  let base = row * p.d;
  var acc = 0.0;
  for (var i = lid; i < p.d; i += WG) {
    let v = x[base + i];
    acc = fma(v, v, acc);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let scale = inverseSqrt(partial[0] / f32(p.d) + p.eps);
  for (var i = lid; i < p.d; i += WG) {
    y[base + i] = x[base + i] * scale * w[i];
  }
}

// ---- backward: dx from dy (the weight is frozen: no dw) -------------------------------------
// With r = 1/√(mean(x²) + eps):  dx_i = r·w_i·dy_i − x_i · r³ · Σ_j(w_j·dy_j·x_j) / d.

@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> pb: Params;

var<workgroup> partial2: array<vec2f, WG>;

@compute @workgroup_size(WG)
fn backward(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= pb.rows) {
    return;
  }
  let base = row * pb.d;
  var acc = vec2f(0.0);  // (Σ x², Σ w·dy·x)
  for (var i = lid; i < pb.d; i += WG) {
    let v = x[base + i];
    acc += vec2f(v * v, w[i] * dy[base + i] * v);
  }
  partial2[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial2[lid] += partial2[lid + stride];
    }
    workgroupBarrier();
  }
  let r = inverseSqrt(partial2[0].x / f32(pb.d) + pb.eps);
  let c = r * r * r * partial2[0].y / f32(pb.d);
  for (var i = lid; i < pb.d; i += WG) {
    dx[base + i] = r * w[i] * dy[base + i] - c * x[base + i];
  }
}
