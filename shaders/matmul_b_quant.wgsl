// Operand B of matmul.wgsl stored as ggml quantized blocks (a quantized tensor, src/gpu/tensor.ts)
// and decoded as it is read, so a quantized weight never has an f32 copy. quant.wgsl and the
// type's quant_<type>.wgsl come before this file (src/linalg/matmul.ts bOperand). Elements are
// counted row-major over B's logical shape, as in every matmul_b_*.wgsl file.

@group(0) @binding(1) var<storage, read> B: array<u32>;

fn qw(w: u32) -> u32 {
  return B[w];
}

fn b_load(i: u32) -> f32 {
  return dq(i);
}

fn b4(i: u32) -> vec4f {
  return dq4(i);
}
