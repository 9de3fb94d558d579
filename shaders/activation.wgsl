// Elementwise activations f and their derivatives, the kind fixed per pipeline by KIND:
//   0 silu:      f(x) = x·σ(x),                       f' = σ(x)·(1 + x·(1 − σ(x)))
//   1 gelu_tanh: f(x) = 0.5·x·(1 + tanh(u)) = x·σ(2u),  u = √(2/π)·(x + 0.044715·x³)
//                (torch's gelu 'tanh', HF's gelu_pytorch_tanh and gelu_new),
//                f' = σ(2u) + 2x·σ(2u)·(1 − σ(2u))·du/dx
//   2 softcap:   f(x) = cap·tanh(x/cap),               f' = 1 − tanh²(x/cap)
// Entry points, one invocation per element laid out by linearGrid:
//   gated_forward, gated_backward: act = f(gate)·up (SwiGLU, GeGLU) and its gradients
//     d_gate = d_act·up·f'(gate), d_up = d_act·f(gate);
//   forward, backward: y = f(x) and dx = dy·f'(x).
// No tanh builtin: implementations may evaluate it as a ratio of exponentials that overflows to
// NaN for large arguments, and some GPUs approximate it coarsely. gelu's 1 + tanh(u) is 2σ(2u)
// with the stable sigmoid; softcap's tanh is a series near 0 and a ratio of decaying
// exponentials elsewhere.

override WG: u32 = 256u;
override KIND: u32 = 0u;

const SILU = 0u;
const GELU_TANH = 1u;
const SOFTCAP = 2u;

const SQRT_2_OVER_PI = 0.7978845608028654;
const GELU_CUBIC = 0.044715;
// |x| beyond which gelu_tanh is x or 0 to f32 precision (σ(2u) within 1e-37 of 1 or 0): taken
// as such, so that x³ cannot overflow and x·σ(2u) cannot meet a huge x with a denormal σ.
const GELU_SATURATION = 10.0;

struct Params {
  n: u32,
  cap: f32,  // softcap's cap
}

@group(0) @binding(0) var<storage, read> x: array<f32>;

// forward
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// backward
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> pb: Params;

// gated_forward (binding 0 is the gate)
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> act: array<f32>;
@group(0) @binding(3) var<uniform> pg: Params;

// gated_backward
@group(0) @binding(2) var<storage, read> d_act: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_up: array<f32>;
@group(0) @binding(5) var<uniform> pgb: Params;

fn sigmoid(v: f32) -> f32 {
  // Two branches so that exp never overflows.
  if (v >= 0.0) {
    return 1.0 / (1.0 + exp(-v));
  }
  let e = exp(v);
  return e / (1.0 + e);
}

/// (tanh(v), 1 − tanh²(v)), accurate in relative terms for small |v| and finite for any v.
fn tanh_sech2(v: f32) -> vec2f {
  let a = abs(v);
  if (a < 0.25) {
    // Taylor series to v⁹: the next term is below 1e-8 relative here, where 1 − e⁻²ᵃ would
    // cancel.
    let s = v * v;
    let t = v * (1.0 + s * (-1.0 / 3.0 + s * (2.0 / 15.0 + s * (-17.0 / 315.0 + s * (62.0 / 2835.0)))));
    return vec2f(t, 1.0 - t * t);
  }
  // e ≤ e^−0.5: 1 − e keeps its precision; min keeps exp's argument finite.
  let e = exp(-2.0 * min(a, 40.0));
  let t = (1.0 - e) / (1.0 + e);
  return vec2f(sign(v) * t, 4.0 * e / ((1.0 + e) * (1.0 + e)));
}

/// (f(v), f'(v)) for KIND; cap is softcap's.
fn activation(v: f32, cap: f32) -> vec2f {
  switch KIND {
    case SILU: {
      let s = sigmoid(v);
      return vec2f(v * s, s * (1.0 + v * (1.0 - s)));
    }
    case GELU_TANH: {
      if (abs(v) > GELU_SATURATION) {
        return select(vec2f(0.0), vec2f(v, 1.0), v > 0.0);
      }
      let s = sigmoid(2.0 * SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v));
      let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * v * v);
      return vec2f(v * s, s + 2.0 * v * s * (1.0 - s) * du);
    }
    case SOFTCAP: {
      let t = tanh_sech2(v / cap);
      return vec2f(cap * t.x, t.y);
    }
    default: {
      return vec2f(0.0);
    }
  }
}

fn index(id: vec3u, nwg: vec3u) -> u32 {
  return id.x + id.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(id, nwg);
  if (i < p.n) {
    y[i] = activation(x[i], p.cap).x;
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(id, nwg);
  if (i < pb.n) {
    dx[i] = dy[i] * activation(x[i], pb.cap).y;
  }
}

@compute @workgroup_size(WG)
fn gated_forward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(id, nwg);
  if (i < pg.n) {
    act[i] = activation(x[i], pg.cap).x * up[i];
  }
}

@compute @workgroup_size(WG)
fn gated_backward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(id, nwg);
  if (i < pgb.n) {
    let f = activation(x[i], pgb.cap);
    d_gate[i] = d_act[i] * up[i] * f.y;
    d_up[i] = d_act[i] * f.x;
  }
}
