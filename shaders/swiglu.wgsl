// The SwiGLU gate of the Llama MLP, elementwise over [tokens × intermediate]:
//   forward:  act = silu(gate) · up,   silu(g) = g·σ(g)
//   backward: d_gate = d_act · up · σ(g)·(1 + g·(1 − σ(g))),   d_up = d_act · silu(g)
// One invocation per element, laid out by linearGrid.

override WG: u32 = 256u;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;

@group(0) @binding(2) var<storage, read_write> act: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@group(0) @binding(2) var<storage, read> d_act: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_up: array<f32>;
@group(0) @binding(5) var<uniform> pb: Params;

fn sigmoid(v: f32) -> f32 {
  // Two branches so that exp never overflows.
  if (v >= 0.0) {
    return 1.0 / (1.0 + exp(-v));
  }
  let e = exp(v);
  return e / (1.0 + e);
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i < p.n) {
    let g = gate[i];
    act[i] = g * sigmoid(g) * up[i];
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i < pb.n) {
    let g = gate[i];
    let s = sigmoid(g);
    d_up[i] = d_act[i] * g * s;
    d_gate[i] = d_act[i] * up[i] * s * (1.0 + g * (1.0 - s));
  }
}
