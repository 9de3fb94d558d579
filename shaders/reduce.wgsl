// Row-wise reduction of an f32 matrix x [rows × cols]:
//   out[r, c] = ⊕ x[r, c·chunk_len … min((c+1)·chunk_len, cols))   ⊕ = sum (OP 0) or max (OP 1)
// so out is [rows × chunks]. src/linalg/reduce.ts repeats passes until one chunk per row is
// left; an empty row reduces to the identity (0 for sum, −inf for max).
//
// main: one workgroup of WG invocations (a power of two) per (row, chunk), laid over x and y
// by linearGrid. Each invocation accumulates a strided slice of the chunk in a register, then the
// workgroup combines its WG partial results in a tree in workgroup memory (log2 WG barriers).
// serial: for short rows, one invocation per row and no barriers (rows × chunks = rows × 1):
// barriers cost ~0.3–0.5 µs per subgroup on SwiftShader, so a workgroup per 3-wide row
// was 100× slower than this.
// max follows WGSL's max(): NaN inputs give an unspecified result; sum propagates NaN.

override OP: u32 = 0u;
override WG: u32 = 256u;

struct Params {
  cols: u32,
  chunks: u32,     // chunks per row
  groups: u32,     // rows · chunks: workgroups doing work
  chunk_len: u32,
  identity: f32,   // 0 or −inf, from the host: WGSL constants cannot express infinity
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> partial: array<f32, WG>;

fn combine(u: f32, v: f32) -> f32 {
  if (OP == 0u) {
    return u + v;
  }
  return max(u, v);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let group = wg.x + wg.y * nwg.x;
  if (group >= p.groups) {
    return;  // the whole workgroup leaves together: barriers below stay in uniform control flow
  }
  let row = group / p.chunks;
  let begin = (group % p.chunks) * p.chunk_len;
  let end = min(begin + p.chunk_len, p.cols);
  let base = row * p.cols;

  var acc = p.identity;
  for (var i = begin + lid; i < end; i += WG) {
    acc = combine(acc, x[base + i]);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] = combine(partial[lid], partial[lid + stride]);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[group] = partial[0];
  }
}

@compute @workgroup_size(WG)
fn serial(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = id.x + id.y * nwg.x * WG;
  if (row >= p.groups) {
    return;
  }
  let base = row * p.cols;
  var acc = p.identity;
  for (var i = 0u; i < p.cols; i++) {
    acc = combine(acc, x[base + i]);
  }
  out[row] = acc;
}
