// Row copies, one invocation per copied element, laid out by linearGrid.
//   gather:    out[r, :] = table[ids[r], :]             (embedding lookup)
//   write_at:  dst[(row0 + r), :] = src[r, :]           (appending to a KV cache)

override WG: u32 = 256u;

struct Params {
  rows: u32,
  width: u32,
  row0: u32,
}

@group(0) @binding(0) var<storage, read> table: array<f32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.rows * p.width) {
    return;
  }
  let r = i / p.width;
  out[i] = table[ids[r] * p.width + i % p.width];
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> q: Params;

@compute @workgroup_size(WG)
fn write_at(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= q.rows * q.width) {
    return;
  }
  dst[q.row0 * q.width + i] = src[i];
}
