// Q5_1 (quant.wgsl): 32 values in 24 bytes: f16 d, f16 m, a u32 of fifth bits, 16 bytes of
// nibbles, placed as in Q5_0; value = d·q + m.

fn dq(i: u32) -> f32 {
  let at = (i / 32u) * 24u;
  let e = i % 32u;
  let high = (q_word(at + 4u) >> e) & 1u;
  let q = ((q_byte(at + 8u + e % 16u) >> (4u * (e / 16u))) & 15u) | (high << 4u);
  return q_half(at) * f32(q) + q_half(at + 2u);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 32u) * 24u;
  let e = i % 32u;
  let high = (vec4u(q_word(at + 4u)) >> (vec4u(0u, 1u, 2u, 3u) + e)) & vec4u(1u);
  let q = q_fields4(q_word(at + 8u + e % 16u), 4u * (e / 16u), 15u) | (high << vec4u(4u));
  return q_half(at) * vec4f(q) + q_half(at + 2u);
}
