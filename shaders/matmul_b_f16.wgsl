// Operand B of matmul.wgsl stored as IEEE half, read natively (needs `enable f16;`, so only on
// devices with the shader-f16 feature). Elsewhere matmul_b_f16_packed.wgsl reads the same bytes.

@group(0) @binding(1) var<storage, read> B: array<f16>;
@group(0) @binding(1) var<storage, read> B4: array<vec4<f16>>;

fn b_load(i: u32) -> f32 {
  return f32(B[i]);
}

fn b4(i: u32) -> vec4f {
  return vec4f(B4[i / 4u]);
}
