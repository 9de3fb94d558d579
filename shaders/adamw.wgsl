// The optimiser's kernels over one flat parameter tensor.
//   sum_squares: out[slot] = Σ grad²  (one workgroup per tensor: adapter factors are small);
//                the host turns these into the global norm, the clip factor and a per-tensor
//                NaN/Inf report.
//   step:        AdamW (Loshchilov & Hutter; PyTorch's AdamW), with g = grad·grad_scale:
//                m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
//                θ ← θ·(1 − lr·wd) − lr · (m / bias1) / (√(v / bias2) + eps)
//                where bias1 = 1 − β₁ᵗ, bias2 = 1 − β₂ᵗ come from the host.

override WG: u32 = 256u;

struct SumParams {
  n: u32,
  slot: u32,
}

struct StepParams {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bias1: f32,
  bias2: f32,
  grad_scale: f32,
}

@group(0) @binding(0) var<storage, read> grad_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> sums: array<f32>;
@group(0) @binding(2) var<uniform> ps: SumParams;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn sum_squares(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < ps.n; i += WG) {
    let g = grad_in[i];
    acc = fma(g, g, acc);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    sums[ps.slot] = partial[0];
  }
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m1: array<f32>;
@group(0) @binding(3) var<storage, read_write> m2: array<f32>;
@group(0) @binding(4) var<uniform> p: StepParams;

@compute @workgroup_size(WG)
fn step(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  let g = grad[i] * p.grad_scale;
  let m = fma(p.beta1, m1[i], (1.0 - p.beta1) * g);
  let v = fma(p.beta2, m2[i], (1.0 - p.beta2) * g * g);
  m1[i] = m;
  m2[i] = v;
  let update = (m / p.bias1) / (sqrt(v / p.bias2) + p.eps);
  param[i] = param[i] * (1.0 - p.lr * p.weight_decay) - p.lr * update;
}
