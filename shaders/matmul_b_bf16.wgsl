// Operand B of matmul.wgsl stored as bfloat16, pairs packed in u32s (element 2j in the low half
// of word j). A bfloat16 is the top 16 bits of an f32, so widening is a shift: exact, any device.

@group(0) @binding(1) var<storage, read> B: array<u32>;
@group(0) @binding(1) var<storage, read> B4: array<vec2u>;

fn b_load(i: u32) -> f32 {
  let w = B[i / 2u];
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, i % 2u == 1u));
}

fn b4(i: u32) -> vec4f {
  let w = B4[i / 4u];
  return bitcast<vec4f>(vec4u(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
}
