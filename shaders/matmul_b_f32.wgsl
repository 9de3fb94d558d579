// Operand B of matmul.wgsl stored as f32. Each matmul_b_*.wgsl file declares B (scalar) and B4
// (for the vec4 kernels) at binding 1 and defines how elements are read as f32:
//   b_load(i): element i;  b4(i): elements i … i+3, i a multiple of 4.
// src/linalg/matmul.ts places the file matching B's dtype before matmul.wgsl.

@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(1) var<storage, read> B4: array<vec4f>;

fn b_load(i: u32) -> f32 {
  return B[i];
}

fn b4(i: u32) -> vec4f {
  return B4[i / 4u];
}
