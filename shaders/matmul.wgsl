// Batched matrix product with register tiling:
//   C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]        op(X) = X or Xᵀ
// op(A) is M×K, op(B) is K×N, C is M×N; all row-major f32. A is stored M×K, or K×M when
// TRANS_A; B is stored K×N, or N×K when TRANS_B. Batch b starts at b·stride in each buffer
// (stride 0 shares one matrix across the batch).
//
// Each invocation computes an 8×4 block of C in eight vec4 registers, so every value loaded
// from A is used 4 times and every value from B 8 times. The loops are unrolled by hand:
// SwiftShader does not unroll, and function-scope arrays indexed in loops live in memory
// (a loop-and-array version of this kernel ran 15–20× slower). No workgroup memory: on
// SwiftShader loads per FLOP are the lever and barriers are costly (shared/SWIFTSHADER.md).
// Dispatch: workgroup (WG_X, WG_Y); grid (⌈N/(4·WG_X)⌉, ⌈M/(8·WG_Y)⌉, batches).
// Edges: loads clamp to the last row/column (always in bounds), stores are masked, so any
// M, N, K ≥ 1 works. K = 0 gives C = beta·C.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (TRANS_A) {
    return A[base + k * p.M + m];
  }
  return A[base + m * p.K + k];
}

fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (TRANS_B) {
    return B[base + n * p.K + k];
  }
  return B[base + k * p.N + n];
}

// op(B)[k, n0 … n0+3], columns past N clamped to the last one.
fn load_b4(base: u32, k: u32, n0: u32) -> vec4f {
  let last = p.N - 1u;
  return vec4f(
    load_b(base, k, n0),
    load_b(base, k, min(n0 + 1u, last)),
    load_b(base, k, min(n0 + 2u, last)),
    load_b(base, k, min(n0 + 3u, last)),
  );
}

fn store_row(base: u32, m: u32, n0: u32, acc: vec4f) {
  if (m >= p.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j;
    if (n < p.N) {
      let at = base + m * p.N + n;
      var value = p.alpha * acc[j];
      if (p.beta != 0.0) {
        value = fma(p.beta, C[at], value);
      }
      C[at] = value;
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n0 = gid.x * 4u;
  let m0 = gid.y * 8u;
  if (m0 >= p.M || n0 >= p.N) {
    return;
  }
  let base_a = gid.z * p.stride_a;
  let base_b = gid.z * p.stride_b;
  let base_c = gid.z * p.stride_c;
  let r0 = min(m0 + 0u, p.M - 1u);
  let r1 = min(m0 + 1u, p.M - 1u);
  let r2 = min(m0 + 2u, p.M - 1u);
  let r3 = min(m0 + 3u, p.M - 1u);
  let r4 = min(m0 + 4u, p.M - 1u);
  let r5 = min(m0 + 5u, p.M - 1u);
  let r6 = min(m0 + 6u, p.M - 1u);
  let r7 = min(m0 + 7u, p.M - 1u);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  var acc4 = vec4f(0.0);
  var acc5 = vec4f(0.0);
  var acc6 = vec4f(0.0);
  var acc7 = vec4f(0.0);
  let k4 = p.K & ~3u;
  var k = 0u;
  for (; k < k4; k += 4u) {
    let b0 = load_b4(base_b, k + 0u, n0);
    let b1 = load_b4(base_b, k + 1u, n0);
    let b2 = load_b4(base_b, k + 2u, n0);
    let b3 = load_b4(base_b, k + 3u, n0);
    acc0 = fma(vec4f(load_a(base_a, r0, k + 0u)), b0, acc0);
    acc1 = fma(vec4f(load_a(base_a, r1, k + 0u)), b0, acc1);
    acc2 = fma(vec4f(load_a(base_a, r2, k + 0u)), b0, acc2);
    acc3 = fma(vec4f(load_a(base_a, r3, k + 0u)), b0, acc3);
    acc4 = fma(vec4f(load_a(base_a, r4, k + 0u)), b0, acc4);
    acc5 = fma(vec4f(load_a(base_a, r5, k + 0u)), b0, acc5);
    acc6 = fma(vec4f(load_a(base_a, r6, k + 0u)), b0, acc6);
    acc7 = fma(vec4f(load_a(base_a, r7, k + 0u)), b0, acc7);
    acc0 = fma(vec4f(load_a(base_a, r0, k + 1u)), b1, acc0);
    acc1 = fma(vec4f(load_a(base_a, r1, k + 1u)), b1, acc1);
    acc2 = fma(vec4f(load_a(base_a, r2, k + 1u)), b1, acc2);
    acc3 = fma(vec4f(load_a(base_a, r3, k + 1u)), b1, acc3);
    acc4 = fma(vec4f(load_a(base_a, r4, k + 1u)), b1, acc4);
    acc5 = fma(vec4f(load_a(base_a, r5, k + 1u)), b1, acc5);
    acc6 = fma(vec4f(load_a(base_a, r6, k + 1u)), b1, acc6);
    acc7 = fma(vec4f(load_a(base_a, r7, k + 1u)), b1, acc7);
    acc0 = fma(vec4f(load_a(base_a, r0, k + 2u)), b2, acc0);
    acc1 = fma(vec4f(load_a(base_a, r1, k + 2u)), b2, acc1);
    acc2 = fma(vec4f(load_a(base_a, r2, k + 2u)), b2, acc2);
    acc3 = fma(vec4f(load_a(base_a, r3, k + 2u)), b2, acc3);
    acc4 = fma(vec4f(load_a(base_a, r4, k + 2u)), b2, acc4);
    acc5 = fma(vec4f(load_a(base_a, r5, k + 2u)), b2, acc5);
    acc6 = fma(vec4f(load_a(base_a, r6, k + 2u)), b2, acc6);
    acc7 = fma(vec4f(load_a(base_a, r7, k + 2u)), b2, acc7);
    acc0 = fma(vec4f(load_a(base_a, r0, k + 3u)), b3, acc0);
    acc1 = fma(vec4f(load_a(base_a, r1, k + 3u)), b3, acc1);
    acc2 = fma(vec4f(load_a(base_a, r2, k + 3u)), b3, acc2);
    acc3 = fma(vec4f(load_a(base_a, r3, k + 3u)), b3, acc3);
    acc4 = fma(vec4f(load_a(base_a, r4, k + 3u)), b3, acc4);
    acc5 = fma(vec4f(load_a(base_a, r5, k + 3u)), b3, acc5);
    acc6 = fma(vec4f(load_a(base_a, r6, k + 3u)), b3, acc6);
    acc7 = fma(vec4f(load_a(base_a, r7, k + 3u)), b3, acc7);
  }
  for (; k < p.K; k++) {
    let bt = load_b4(base_b, k, n0);
    acc0 = fma(vec4f(load_a(base_a, r0, k)), bt, acc0);
    acc1 = fma(vec4f(load_a(base_a, r1, k)), bt, acc1);
    acc2 = fma(vec4f(load_a(base_a, r2, k)), bt, acc2);
    acc3 = fma(vec4f(load_a(base_a, r3, k)), bt, acc3);
    acc4 = fma(vec4f(load_a(base_a, r4, k)), bt, acc4);
    acc5 = fma(vec4f(load_a(base_a, r5, k)), bt, acc5);
    acc6 = fma(vec4f(load_a(base_a, r6, k)), bt, acc6);
    acc7 = fma(vec4f(load_a(base_a, r7, k)), bt, acc7);
  }
  store_row(base_c, m0 + 0u, n0, acc0);
  store_row(base_c, m0 + 1u, n0, acc1);
  store_row(base_c, m0 + 2u, n0, acc2);
  store_row(base_c, m0 + 3u, n0, acc3);
  store_row(base_c, m0 + 4u, n0, acc4);
  store_row(base_c, m0 + 5u, n0, acc5);
  store_row(base_c, m0 + 6u, n0, acc6);
  store_row(base_c, m0 + 7u, n0, acc7);
}
