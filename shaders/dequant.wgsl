// Quantized tensors (ggml blocks, decoded by the quant.wgsl and quant_<type>.wgsl placed before
// this file) to f32:
//   widen:   y[i] = x[i]                      (src/linalg/widen.ts asF32)
//   gather:  out[r, :] = table[ids[r], :]      (embedding lookup: src/model/ops.ts gatherRows)
// One invocation per 4 elements (rows hold a multiple of 32), WG per workgroup, laid out by
// linearGrid.

override WG: u32 = 256u;

struct Params {
  n: u32, // elements written
  width: u32, // row length (gather)
}

@group(0) @binding(0) var<storage, read> blocks: array<u32>;

fn qw(w: u32) -> u32 {
  return blocks[w];
}

@group(0) @binding(1) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn widen(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = id.x + id.y * nwg.x * WG;
  if (4u * j >= p.n) {
    return;
  }
  y[j] = dq4(4u * j);
}

@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(3) var<uniform> g: Params;

@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = id.x + id.y * nwg.x * WG;
  let i = 4u * j;
  if (i >= g.n) {
    return;
  }
  out[j] = dq4(ids[i / g.width] * g.width + i % g.width);
}
