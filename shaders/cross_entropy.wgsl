// Next-token cross-entropy per row of logits [rows × vocab] with targets [rows] (i32; < 0 means
// the row is not trained): loss[r] = log Σ_j exp(logits[r, j]) − logits[r, target] (0 when
// masked). With grad_scale ≠ 0 the logits are overwritten by the gradient of grad_scale·Σ loss:
// (softmax − onehot(target))·grad_scale, and 0 on masked rows; the caller passes
// 1 / (trained tokens of the whole step) so the loss is a mean.
// One workgroup of WG invocations (a power of two) per row, laid out by linearGrid: a strided
// max, a strided Σ exp(x − max), each combined by a tree in workgroup memory.

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

fn tree_max(lid: u32, value: f32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] = max(partial[lid], partial[lid + stride]);
    }
    workgroupBarrier();
  }
  let result = partial[0];
  workgroupBarrier();  // everyone has read partial[0] before it is reused
  return result;
}

fn tree_sum(lid: u32, value: f32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  return partial[0];
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
  // A workgroup-uniform copy: the branch below may then skip the barriers that follow.
  let target_id = workgroupUniformLoad(&row_target);
  if (target_id < 0) {
    if (p.grad_scale != 0.0) {
      for (var j = lid; j < p.vocab; j += WG) {
        logits[base + j] = 0.0;
      }
    }
    if (lid == 0u) {
      loss[row] = 0.0;
    }
    return;
  }
  var m = -3.4e38;
  for (var j = lid; j < p.vocab; j += WG) {
    m = max(m, logits[base + j]);
  }
  m = tree_max(lid, m);
  var s = 0.0;
  for (var j = lid; j < p.vocab; j += WG) {
    s += exp(logits[base + j] - m);
  }
  s = tree_sum(lid, s);
  let log_z = m + log(s);
  let t = u32(target_id);
  if (lid == 0u) {
    loss[row] = log_z - logits[base + t];
  }
  storageBarrier();  // lid 0 has read logits[base + t] before anyone overwrites it
  workgroupBarrier();
  if (p.grad_scale != 0.0) {
    for (var j = lid; j < p.vocab; j += WG) {
      let onehot = select(0.0, 1.0, j == t);
      logits[base + j] = (exp(logits[base + j] - log_z) - onehot) * p.grad_scale;
    }
  }
}
