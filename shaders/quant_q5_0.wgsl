// Q5_0 (quant.wgsl): 32 values in 22 bytes: f16 d, a u32 whose bit j is value j's fifth bit,
// 16 bytes of nibbles placed as in Q4_0; value = d·(q − 16).

fn dq(i: u32) -> f32 {
  let at = (i / 32u) * 22u;
  let e = i % 32u;
  let high = (q_word(at + 2u) >> e) & 1u;
  let q = ((q_byte(at + 6u + e % 16u) >> (4u * (e / 16u))) & 15u) | (high << 4u);
  return q_half(at) * (f32(q) - 16.0);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 32u) * 22u;
  let e = i % 32u;
  let high = (vec4u(q_word(at + 2u)) >> (vec4u(0u, 1u, 2u, 3u) + e)) & vec4u(1u);
  let q = q_fields4(q_word(at + 6u + e % 16u), 4u * (e / 16u), 15u) | (high << vec4u(4u));
  return q_half(at) * (vec4f(q) - 16.0);
}
