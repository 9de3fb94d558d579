// Row copies, one invocation per copied element, laid out by linearGrid.
//   gather:       out[r, :] = table[ids[r], :]          (embedding lookup)
//   gather_half:  the same from a table in f16, or bf16 when BF16 (half.wgsl comes first)
//   write_at:     dst[(row0 + r), :] = src[r, :]        (appending to a KV cache)

override WG: u32 = 256u;
override BF16: bool = false;

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

@group(0) @binding(0) var<storage, read> table_words: array<u32>;

fn table_half(j: u32) -> f32 {
  let w = table_words[j / 2u];
  if (BF16) {
    return bf16_pair(w)[j % 2u];
  }
  return f16_pair(w)[j % 2u];
}

@compute @workgroup_size(WG)
fn gather_half(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = id.x + id.y * nwg.x * WG;
  if (i >= p.rows * p.width) {
    return;
  }
  let r = i / p.width;
  out[i] = table_half(ids[r] * p.width + i % p.width);
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
