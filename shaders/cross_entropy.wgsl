// Next-token cross-entropy per row of logits [rows × vocab] with targets [rows] (i32; < 0 means
// the row is not trained): loss[r] = log Σ_j exp(logits[r, j]) − logits[r, target] (0 when
// masked). With grad_scale ≠ 0 the logits are overwritten by the gradient of grad_scale·Σ loss:
// (softmax − onehot(target))·grad_scale, and 0 on masked rows; the caller passes
// 1 / (trained tokens of the whole step) so the loss is a mean.
// Two layouts of the same math, as in rmsnorm.wgsl: `main`, one workgroup of WG invocations per
// row with strided loops combined by trees; `main_serial`, one invocation per row and no
// barriers (for CPU implementations, where barriers are what costs).

override WG: u32 = 256u;

struct Params {
  rows: u32,
  vocab: u32,
  grad_scale: f32,
}

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> partial: array<f32, WG>;
var<workgroup> row_target: i32;

fn row_max(base: u32, start: u32, stride: u32) -> f32 {
  var m = -3.4e38;
  for (var j = start; j < p.vocab; j += stride) {
    m = max(m, logits[base + j]);
  }
  return m;
}

fn row_sum_exp(base: u32, start: u32, stride: u32, m: f32) -> f32 {
  var s = 0.0;
  for (var j = start; j < p.vocab; j += stride) {
    s += exp(logits[base + j] - m);
  }
  return s;
}

/// Overwrites the row with the gradient (or zeros for a masked row).
fn write_gradient(base: u32, start: u32, stride: u32, log_z: f32, target_id: i32) {
  for (var j = start; j < p.vocab; j += stride) {
    let onehot = select(0.0, 1.0, i32(j) == target_id);
    let g = (exp(logits[base + j] - log_z) - onehot) * p.grad_scale;
    logits[base + j] = select(g, 0.0, target_id < 0);
  }
}

fn tree(lid: u32, value: f32, is_max: bool) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let other = partial[lid + stride];
      partial[lid] = select(partial[lid] + other, max(partial[lid], other), is_max);
    }
    workgroupBarrier();
  }
  let result = partial[0];
  workgroupBarrier();  // everyone has read partial[0] before it is reused
  return result;
}

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
  let base = row * p.vocab;
  if (lid == 0u) {
    row_target = targets[row];
  }
  let target_id = workgroupUniformLoad(&row_target);
  let m = tree(lid, row_max(base, lid, WG), true);
  let log_z = m + log(tree(lid, row_sum_exp(base, lid, WG, m), false));
  if (lid == 0u) {
    loss[row] = select(log_z - logits[base + u32(max(target_id, 0))], 0.0, target_id < 0);
  }
  storageBarrier();  // lid 0 has read logits[base + target] before anyone overwrites it
  if (p.grad_scale != 0.0) {
    write_gradient(base, lid, WG, log_z, target_id);
  }
}

@compute @workgroup_size(WG)
fn main_serial(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = id.x + id.y * nwg.x * WG;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.vocab;
  let target_id = targets[row];
  let m = row_max(base, 0u, 1u);
  let log_z = m + log(row_sum_exp(base, 0u, 1u, m));
  loss[row] = select(log_z - logits[base + u32(max(target_id, 0))], 0.0, target_id < 0);
  if (p.grad_scale != 0.0) {
    write_gradient(base, 0u, 1u, log_z, target_id);
  }
}
