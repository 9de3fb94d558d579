// Q4_1 (quant.wgsl): 32 values in 20 bytes: f16 d, f16 m, 16 bytes of nibbles placed as in Q4_0;
// value = d·q + m.

fn dq(i: u32) -> f32 {
  let at = (i / 32u) * 20u;
  let e = i % 32u;
  let q = (q_byte(at + 4u + e % 16u) >> (4u * (e / 16u))) & 15u;
  return q_half(at) * f32(q) + q_half(at + 2u);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 32u) * 20u;
  let e = i % 32u;
  let q = q_fields4(q_word(at + 4u + e % 16u), 4u * (e / 16u), 15u);
  return q_half(at) * vec4f(q) + q_half(at + 2u);
}
