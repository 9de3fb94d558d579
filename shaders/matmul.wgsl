// Batched matrix product with register blocking:
//   C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]        op(X) = X or Xᵀ
// op(A) is M×K, op(B) is K×N, C is M×N; all row-major, f32 except B, which may be stored in
// half precision (a matmul_b_*.wgsl file, placed before this one, declares B and how to read
// it as f32). A is stored M×K, or K×M when TRANS_A; B is stored K×N, or N×K when TRANS_B. Batch b starts at b·stride in each buffer
// (stride 0 shares one matrix across the batch).
//
// Each invocation computes an 8×4 block of C, held as two mat4x4f (rows 0–3 and 4–7). Per step
// of 4 along K it loads a 4×4 block of op(B) and two of op(A) and does two 4×4 matrix products:
// every value of A is used 4 times, every value of B 8 times. No workgroup memory: on SwiftShader
// loads per FLOP are the lever and barriers are costly (docs/design.md §6); no loops over
// register arrays either (SwiftShader keeps dynamically indexed arrays in memory: 15–20× slower).
//
// Entry points: `main` gathers each block from scalar loads and takes any shape; `main_vec4`
// loads whole vec4s and needs K and the contiguous dimension of each operand (K or M for A,
// N or K for B) to be multiples of 4 — src/linalg/matmul.ts picks it when they are.
// Dispatch: workgroup (WG_X, WG_Y); grid (⌈N/(4·WG_X)⌉, ⌈M/(8·WG_Y)⌉, batches).
// Edges: loads clamp to the last row/column (always in bounds), stores are masked, and in
// `main` K's remainder after the last full step of 4 runs one k at a time.

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
@group(0) @binding(0) var<storage, read> A4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// Where this invocation's block starts, and the batch offsets.
struct Origin {
  m0: u32,
  n0: u32,
  base_a: u32,
  base_b: u32,
  base_c: u32,
}

fn origin(gid: vec3u) -> Origin {
  return Origin(gid.y * 8u, gid.x * 4u, gid.z * p.stride_a, gid.z * p.stride_b, gid.z * p.stride_c);
}

// ---- scalar loads (any shape) -----------------------------------------------

fn a_at(o: Origin, m: u32, k: u32) -> f32 {
  let mc = min(m, p.M - 1u);
  if (TRANS_A) {
    return A[o.base_a + k * p.M + mc];
  }
  return A[o.base_a + mc * p.K + k];
}

fn b_at(o: Origin, k: u32, n: u32) -> f32 {
  let nc = min(n, p.N - 1u);
  if (TRANS_B) {
    return b_load(o.base_b + nc * p.K + k);
  }
  return b_load(o.base_b + k * p.N + nc);
}

// op(A)[m0+r … m0+r+3, k … k+3] as a matrix whose column c is A's column k+c.
fn a_block(o: Origin, r: u32, k: u32) -> mat4x4f {
  let m = o.m0 + r;
  return mat4x4f(
    vec4f(a_at(o, m, k), a_at(o, m + 1u, k), a_at(o, m + 2u, k), a_at(o, m + 3u, k)),
    vec4f(a_at(o, m, k + 1u), a_at(o, m + 1u, k + 1u), a_at(o, m + 2u, k + 1u), a_at(o, m + 3u, k + 1u)),
    vec4f(a_at(o, m, k + 2u), a_at(o, m + 1u, k + 2u), a_at(o, m + 2u, k + 2u), a_at(o, m + 3u, k + 2u)),
    vec4f(a_at(o, m, k + 3u), a_at(o, m + 1u, k + 3u), a_at(o, m + 2u, k + 3u), a_at(o, m + 3u, k + 3u)),
  );
}

// op(B)[k … k+3, n0 … n0+3] as a matrix whose column c is B's column n0+c.
fn b_block(o: Origin, k: u32) -> mat4x4f {
  let n = o.n0;
  return mat4x4f(
    vec4f(b_at(o, k, n), b_at(o, k + 1u, n), b_at(o, k + 2u, n), b_at(o, k + 3u, n)),
    vec4f(b_at(o, k, n + 1u), b_at(o, k + 1u, n + 1u), b_at(o, k + 2u, n + 1u), b_at(o, k + 3u, n + 1u)),
    vec4f(b_at(o, k, n + 2u), b_at(o, k + 1u, n + 2u), b_at(o, k + 2u, n + 2u), b_at(o, k + 3u, n + 2u)),
    vec4f(b_at(o, k, n + 3u), b_at(o, k + 1u, n + 3u), b_at(o, k + 2u, n + 3u), b_at(o, k + 3u, n + 3u)),
  );
}

// ---- vec4 loads (contiguous dimensions multiples of 4) -------------------------

// A's elements [i … i+3] as one load; i is a multiple of 4 (b4 is the B file's).
fn a4(i: u32) -> vec4f {
  return A4[i / 4u];
}

fn a_block4(o: Origin, r: u32, k: u32) -> mat4x4f {
  if (TRANS_A) {
    // Rows k … k+3 of the stored K×M matrix hold op(A)'s columns; clamp the last vec4 in M.
    let m = min(o.m0 + r, p.M - 4u);
    let at = o.base_a + k * p.M + m;
    return mat4x4f(a4(at), a4(at + p.M), a4(at + 2u * p.M), a4(at + 3u * p.M));
  }
  let m = o.m0 + r;
  return transpose(mat4x4f(
    a4(o.base_a + min(m, p.M - 1u) * p.K + k),
    a4(o.base_a + min(m + 1u, p.M - 1u) * p.K + k),
    a4(o.base_a + min(m + 2u, p.M - 1u) * p.K + k),
    a4(o.base_a + min(m + 3u, p.M - 1u) * p.K + k),
  ));
}

fn b_block4(o: Origin, k: u32) -> mat4x4f {
  if (TRANS_B) {
    // Rows n0 … n0+3 of the stored N×K matrix are op(B)'s columns.
    let n = o.n0;
    return mat4x4f(
      b4(o.base_b + n * p.K + k),
      b4(o.base_b + min(n + 1u, p.N - 1u) * p.K + k),
      b4(o.base_b + min(n + 2u, p.N - 1u) * p.K + k),
      b4(o.base_b + min(n + 3u, p.N - 1u) * p.K + k),
    );
  }
  let at = o.base_b + k * p.N + o.n0;
  return transpose(mat4x4f(b4(at), b4(at + p.N), b4(at + 2u * p.N), b4(at + 3u * p.N)));
}

// ---- accumulate and store -----------------------------------------------------

// C's 8×4 block: rows 0–3 in lo, 4–7 in hi; column c of each is C's column n0+c.
struct Acc {
  lo: mat4x4f,
  hi: mat4x4f,
}

// The last K mod 4 steps, one k at a time, from scalar loads.
fn tail(o: Origin, acc_in: Acc, k_start: u32) -> Acc {
  var acc = acc_in;
  for (var k = k_start; k < p.K; k++) {
    let b = vec4f(b_at(o, k, o.n0), b_at(o, k, o.n0 + 1u), b_at(o, k, o.n0 + 2u), b_at(o, k, o.n0 + 3u));
    let m = o.m0;
    let lo = vec4f(a_at(o, m, k), a_at(o, m + 1u, k), a_at(o, m + 2u, k), a_at(o, m + 3u, k));
    let hi = vec4f(a_at(o, m + 4u, k), a_at(o, m + 5u, k), a_at(o, m + 6u, k), a_at(o, m + 7u, k));
    // Outer products lo·bᵀ and hi·bᵀ, column by column.
    acc.lo += mat4x4f(lo * b.x, lo * b.y, lo * b.z, lo * b.w);
    acc.hi += mat4x4f(hi * b.x, hi * b.y, hi * b.z, hi * b.w);
  }
  return acc;
}

fn store_row(o: Origin, m: u32, row: vec4f) {
  if (m >= p.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let n = o.n0 + j;
    if (n < p.N) {
      let at = o.base_c + m * p.N + n;
      var value = p.alpha * row[j];
      if (p.beta != 0.0) {
        value = fma(p.beta, C[at], value);
      }
      C[at] = value;
    }
  }
}

fn store(o: Origin, acc: Acc) {
  let lo = transpose(acc.lo);
  let hi = transpose(acc.hi);
  store_row(o, o.m0, lo[0]);
  store_row(o, o.m0 + 1u, lo[1]);
  store_row(o, o.m0 + 2u, lo[2]);
  store_row(o, o.m0 + 3u, lo[3]);
  store_row(o, o.m0 + 4u, hi[0]);
  store_row(o, o.m0 + 5u, hi[1]);
  store_row(o, o.m0 + 6u, hi[2]);
  store_row(o, o.m0 + 7u, hi[3]);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let o = origin(gid);
  if (o.m0 >= p.M || o.n0 >= p.N) {
    return;
  }
  var acc = Acc(mat4x4f(), mat4x4f());
  let k4 = p.K & ~3u;
  for (var k = 0u; k < k4; k += 4u) {
    let b = b_block(o, k);
    acc.lo += a_block(o, 0u, k) * b;
    acc.hi += a_block(o, 4u, k) * b;
  }
  store(o, tail(o, acc, k4));
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_vec4(@builtin(global_invocation_id) gid: vec3u) {
  let o = origin(gid);
  if (o.m0 >= p.M || o.n0 >= p.N) {
    return;
  }
  var acc = Acc(mat4x4f(), mat4x4f());
  for (var k = 0u; k < p.K; k += 4u) {
    let b = b_block4(o, k);
    acc.lo += a_block4(o, 0u, k) * b;
    acc.hi += a_block4(o, 4u, k) * b;
  }
  store(o, acc);
}

// ---- main_shared: workgroup-memory tiling -------------------------------------
// The strategy of the fastest WGSL matmuls on real GPUs, where a workgroup-memory read is far
// cheaper than a buffer read: 16×16 invocations share 64×16 blocks of op(A) and 16×64 of op(B)
// staged in workgroup memory (8 KiB), and each computes a 4×4 block of a 64×64 tile of C.
// On SwiftShader it loses (barriers and workgroup memory cost as much as buffer reads), so the
// autotuner chooses per device. Out-of-range loads stage zeros; stores are masked.
// Dispatch: workgroup (16, 16); grid (⌈N/64⌉, ⌈M/64⌉, batches).

const SHARED_TILE = 64u;
const SHARED_K = 16u;

// [k][m/4] and [k][n/4]: vec4s along m and n, so each step reads one vec4 of each.
var<workgroup> shared_a: array<vec4f, 256>;
var<workgroup> shared_b: array<vec4f, 256>;

fn a_or_zero(o: Origin, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) {
    return 0.0;
  }
  if (TRANS_A) {
    return A[o.base_a + k * p.M + m];
  }
  return A[o.base_a + m * p.K + k];
}

fn b_or_zero(o: Origin, k: u32, n: u32) -> f32 {
  if (n >= p.N || k >= p.K) {
    return 0.0;
  }
  if (TRANS_B) {
    return b_load(o.base_b + n * p.K + k);
  }
  return b_load(o.base_b + k * p.N + n);
}

@compute @workgroup_size(16, 16, 1)
fn main_shared(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) slot: u32,
) {
  let tile_m = wg.y * SHARED_TILE;
  let tile_n = wg.x * SHARED_TILE;
  let o = Origin(tile_m + lid.y * 4u, tile_n + lid.x * 4u, wg.z * p.stride_a, wg.z * p.stride_b, wg.z * p.stride_c);
  // Which vec4 of each staged block this invocation loads: step kk, columns 4·q … 4·q+3.
  let kk = slot / 16u;
  let q = slot % 16u;
  var acc = Acc(mat4x4f(), mat4x4f());
  for (var k0 = 0u; k0 < p.K; k0 += SHARED_K) {
    let m = tile_m + q * 4u;
    let n = tile_n + q * 4u;
    let k = k0 + kk;
    shared_a[slot] = vec4f(a_or_zero(o, m, k), a_or_zero(o, m + 1u, k), a_or_zero(o, m + 2u, k), a_or_zero(o, m + 3u, k));
    shared_b[slot] = vec4f(b_or_zero(o, k, n), b_or_zero(o, k, n + 1u), b_or_zero(o, k, n + 2u), b_or_zero(o, k, n + 3u));
    workgroupBarrier();
    for (var s = 0u; s < SHARED_K; s++) {
      let a = shared_a[s * 16u + lid.y];
      let b = shared_b[s * 16u + lid.x];
      // Rows m0 … m0+3 of the block: acc.lo column c accumulates C[m0+r, n0+c] over r.
      acc.lo += mat4x4f(a * b.x, a * b.y, a * b.z, a * b.w);
    }
    workgroupBarrier();
  }
  store4(o, acc.lo);
}

fn store4(o: Origin, block: mat4x4f) {
  let rows = transpose(block);
  store_row(o, o.m0, rows[0]);
  store_row(o, o.m0 + 1u, rows[1]);
  store_row(o, o.m0 + 2u, rows[2]);
  store_row(o, o.m0 + 3u, rows[3]);
}
