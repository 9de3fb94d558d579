// Elementwise ops on f32 tensors, one invocation per element.
//
//   unary:  y[i] = f(x[i])                  f picked by the override OP (UNARY_OPS in src/linalg/elementwise.ts)
//   affine: y[i] = alpha·x[i] + beta
//   axpy:   y[i] = alpha·x[i] + y[i]            (in place: accumulating gradients)
//   binary: y[i] = a[i] ∘ b[i mod len(b)]   ∘ picked by OP (BINARY_OPS); b's shape is a suffix of a's,
//                                           so b broadcasts over a's leading dimensions (bias rows, scalars)
//
// Layout: flat row-major arrays. Dispatch: WG invocations per workgroup, workgroups laid over
// x and y by linearGrid (src/gpu/dispatch.ts); invocation i = global x + y·(num_workgroups.x·WG).
// No workgroup memory, no barriers: compiles fast and runs at memory speed.

override OP: u32 = 0u;
override WG: u32 = 256u;

struct Params {
  n: u32,      // elements of the output
  nb: u32,     // elements of b (binary only)
  alpha: f32,  // affine only
  beta: f32,   // affine only
}

fn element(id: vec3u, nwg: vec3u) -> u32 {
  return id.x + id.y * nwg.x * WG;
}

// ---- unary and affine: x → y ------------------------------------------------

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn sigmoid(v: f32) -> f32 {
  // Two branches so that exp never overflows.
  if (v >= 0.0) {
    return 1.0 / (1.0 + exp(-v));
  }
  let e = exp(v);
  return e / (1.0 + e);
}

fn apply_unary(v: f32) -> f32 {
  switch OP {
    case 0u: { return -v; }
    case 1u: { return abs(v); }
    case 2u: { return exp(v); }
    case 3u: { return log(v); }
    case 4u: { return sqrt(v); }
    case 5u: { return v * v; }
    case 6u: { return max(v, 0.0); }
    case 7u: { return sigmoid(v); }
    case 8u: { return v * sigmoid(v); }
    // tanh saturates to ±1 in f32 well before |v| = 15; clamping avoids inf/inf inside it.
    case 9u: { return tanh(clamp(v, -15.0, 15.0)); }
    default: { return v; }
  }
}

@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(id, nwg);
  if (i < p.n) {
    y[i] = apply_unary(x[i]);
  }
}

@compute @workgroup_size(WG)
fn affine(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(id, nwg);
  if (i < p.n) {
    y[i] = fma(p.alpha, x[i], p.beta);
  }
}

@compute @workgroup_size(WG)
fn axpy(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(id, nwg);
  if (i < p.n) {
    y[i] = fma(p.alpha, x[i], y[i]);
  }
}

// ---- binary: (a, b) → out ---------------------------------------------------

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> q: Params;

fn apply_binary(u: f32, v: f32) -> f32 {
  switch OP {
    case 0u: { return u + v; }
    case 1u: { return u - v; }
    case 2u: { return u * v; }
    case 3u: { return u / v; }
    case 4u: { return max(u, v); }
    default: { return min(u, v); }
  }
}

@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(id, nwg);
  if (i < q.n) {
    out[i] = apply_binary(a[i], b[i % q.nb]);
  }
}
