// Operand B of matmul.wgsl stored as IEEE half, read as pairs packed in u32s and widened by
// unpack2x16float (core WGSL: any device, no shader-f16 needed). Element 2j is the low half of
// word j, as little-endian bytes lay them out.

@group(0) @binding(1) var<storage, read> B: array<u32>;
@group(0) @binding(1) var<storage, read> B4: array<vec2u>;

fn b_load(i: u32) -> f32 {
  return unpack2x16float(B[i / 2u])[i % 2u];
}

fn b4(i: u32) -> vec4f {
  let w = B4[i / 4u];
  return vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
}
