// Q3_K (quant.wgsl): 256 values in 110 bytes: 32 bytes of high bits (value e's is bit e / 32 of
// byte e % 32), 64 bytes of 2-bit quants placed as in Q2_K, 12 bytes of 6-bit scales (offset 32)
// per 16 values, f16 d; value = (d·scale)·(q − 4 where the high bit is clear). Scale s's low 4
// bits are nibble s / 8 of byte s % 8, its high 2 bits bits 2·(s / 4) of byte 8 + s % 4.

fn q3k_scale(at: u32, s: u32) -> f32 {
  let low = (q_byte(at + 96u + s % 8u) >> (4u * (s / 8u))) & 15u;
  let high = (q_byte(at + 104u + s % 4u) >> (2u * (s / 4u))) & 3u;
  return q_half(at + 108u) * (f32(low | (high << 4u)) - 32.0);
}

fn dq(i: u32) -> f32 {
  let at = (i / 256u) * 110u;
  let e = i % 256u;
  let bits = (q_byte(at + 32u + 32u * (e / 128u) + e % 32u) >> (2u * ((e / 32u) % 4u))) & 3u;
  let hi = (q_byte(at + e % 32u) >> (e / 32u)) & 1u;
  return q3k_scale(at, e / 16u) * (f32(bits) - f32(4u - 4u * hi));
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 256u) * 110u;
  let e = i % 256u;
  let bits = q_fields4(q_word(at + 32u + 32u * (e / 128u) + e % 32u), 2u * ((e / 32u) % 4u), 3u);
  let hi = q_fields4(q_word(at + e % 32u), e / 32u, 1u);
  return q3k_scale(at, e / 16u) * (vec4f(bits) - vec4f(vec4u(4u) - 4u * hi));
}
