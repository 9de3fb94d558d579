// Operand B of matmul.wgsl stored as bfloat16, read as u32 words and widened by half.wgsl
// (exact, any device).

@group(0) @binding(1) var<storage, read> B: array<u32>;
@group(0) @binding(1) var<storage, read> B4: array<vec2u>;

fn b_load(i: u32) -> f32 {
  return bf16_pair(B[i / 2u])[i % 2u];
}

fn b4(i: u32) -> vec4f {
  let w = B4[i / 4u];
  return vec4f(bf16_pair(w.x), bf16_pair(w.y));
}
