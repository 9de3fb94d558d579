// Batched transpose: out[b, j, i] = x[b, i, j] for x [batch × rows × cols].
// One invocation per output element, laid out by linearGrid (src/gpu/dispatch.ts); reads are
// strided, writes contiguous. No workgroup-memory tiling: on SwiftShader it would not pay
// (docs/design.md §6), and transposes here are O(size) next to O(size·rank) products.

override WG: u32 = 256u;

struct Params {
  rows: u32,
  cols: u32,
  total: u32,  // batch · rows · cols
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = id.x + id.y * nwg.x * WG;
  if (o >= p.total) {
    return;
  }
  let size = p.rows * p.cols;
  let base = o - o % size;
  let within = o % size;
  let j = within / p.rows;  // output row = input column
  let i = within % p.rows;
  out[o] = x[base + i * p.cols + j];
}
