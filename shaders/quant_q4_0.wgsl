// Q4_0 (quant.wgsl): 32 values in 18 bytes: f16 d, 16 bytes whose byte j holds value j in its low
// nibble and value j + 16 in its high one; value = d·(q − 8).

fn dq(i: u32) -> f32 {
  let at = (i / 32u) * 18u;
  let e = i % 32u;
  let q = (q_byte(at + 2u + e % 16u) >> (4u * (e / 16u))) & 15u;
  return q_half(at) * (f32(q) - 8.0);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 32u) * 18u;
  let e = i % 32u;
  let q = q_fields4(q_word(at + 2u + e % 16u), 4u * (e / 16u), 15u);
  return q_half(at) * (vec4f(q) - 8.0);
}
