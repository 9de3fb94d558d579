// Column blocks of row-major matrices, one invocation per element of the block, laid out by
// linearGrid: a fused projection's output ([rows × total]: q|k|v, gate|up) split into its parts,
// and the parts' gradients put back side by side.
//   slice:  part[r, c] = whole[r, col0 + c]
//   place:  whole[r, col0 + c] = part[r, c]

override WG: u32 = 256u;

struct Params {
  rows: u32,
  width: u32,
  total: u32,
  col0: u32,
}

@group(0) @binding(0) var<storage, read_write> whole: array<f32>;
@group(0) @binding(1) var<storage, read_write> part: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn slice(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.rows * p.width) {
    return;
  }
  part[i] = whole[(i / p.width) * p.total + p.col0 + i % p.width];
}

@compute @workgroup_size(WG)
fn place(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.rows * p.width) {
    return;
  }
  whole[(i / p.width) * p.total + p.col0 + i % p.width] = part[i];
}
