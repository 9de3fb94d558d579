// Q8_0 (quant.wgsl): 32 values in 34 bytes: f16 d, 32 int8 quants q; value = q·d.

fn dq(i: u32) -> f32 {
  let at = (i / 32u) * 34u;
  return f32(q_int8(at + 2u + i % 32u)) * q_half(at);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 32u) * 34u;
  return vec4f(q_int8x4(q_word(at + 2u + i % 32u))) * q_half(at);
}
