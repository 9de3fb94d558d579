// Subgroup variant of matmul.wgsl's `main_vec4`, for A stored M×K (not TRANS_A). Built on
// matmul.wgsl (loaded before this file, with `enable subgroups;`).
//
// The four invocations x = 4j … 4j+3 of a workgroup row compute blocks with the same 8 rows of
// C, so they need the same 8 rows of A at each step. Each loads 2 of those rows (one vec4 each)
// and gets the other 6 from its neighbours with subgroupShuffle: 2 loads instead of 8 for A.
// On SwiftShader this ran 20–45% faster than `main_vec4` (up to 70% in earlier measurements).
//
// Assumes the subgroup holds consecutive local invocation indices (lane = index mod size), with
// x varying fastest; src/linalg/matmul-tuning.ts only adopts this kernel after checking its
// result against `main_vec4` on the device. Needs WG_X a multiple of 4, a subgroup size that is
// a multiple of 4 dividing the workgroup, and every invocation present for the shuffles (so
// out-of-range invocations compute on clamped rows and skip only the store).

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_subgroups(
  @builtin(global_invocation_id) gid: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let o = origin(gid);
  let g = lid.x % 4u;
  let first = lane - g;
  let row0 = o.base_a + min(o.m0 + 2u * g, p.M - 1u) * p.K;
  let row1 = o.base_a + min(o.m0 + 2u * g + 1u, p.M - 1u) * p.K;
  var acc = Acc(mat4x4f(), mat4x4f());
  for (var k = 0u; k < p.K; k += 4u) {
    let b = b_block4(o, k);
    let v0 = a4(row0 + k);
    let v1 = a4(row1 + k);
    // Rows 2i and 2i+1 of the block come from neighbour i.
    let lo = transpose(mat4x4f(
      subgroupShuffle(v0, first),
      subgroupShuffle(v1, first),
      subgroupShuffle(v0, first + 1u),
      subgroupShuffle(v1, first + 1u),
    ));
    let hi = transpose(mat4x4f(
      subgroupShuffle(v0, first + 2u),
      subgroupShuffle(v1, first + 2u),
      subgroupShuffle(v0, first + 3u),
      subgroupShuffle(v1, first + 3u),
    ));
    acc.lo += lo * b;
    acc.hi += hi * b;
  }
  if (o.m0 < p.M && o.n0 < p.N) {
    store(o, acc);
  }
}
