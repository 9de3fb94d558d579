// Q6_K (quant.wgsl): 256 values in 210 bytes: 128 bytes of low nibbles, 64 bytes of high 2-bit
// pairs, 16 int8 scales (one per 16 values), f16 d. In each half h of 128 values, value r takes
// nibble r / 64 of byte 64h + r % 64 and bits 2·(r / 32) of byte 128 + 32h + r % 32 above it;
// value = (d·scale)·(q − 32).

fn dq(i: u32) -> f32 {
  let at = (i / 256u) * 210u;
  let e = i % 256u;
  let h = e / 128u;
  let r = e % 128u;
  let low = (q_byte(at + 64u * h + r % 64u) >> (4u * (r / 64u))) & 15u;
  let high = (q_byte(at + 128u + 32u * h + r % 32u) >> (2u * (r / 32u))) & 3u;
  let scale = q_half(at + 208u) * f32(q_int8(at + 192u + e / 16u));
  return scale * (f32(low | (high << 4u)) - 32.0);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 256u) * 210u;
  let e = i % 256u;
  let h = e / 128u;
  let r = e % 128u;
  let low = q_fields4(q_word(at + 64u * h + r % 64u), 4u * (r / 64u), 15u);
  let high = q_fields4(q_word(at + 128u + 32u * h + r % 32u), 2u * (r / 32u), 3u);
  let scale = q_half(at + 208u) * f32(q_int8(at + 192u + e / 16u));
  return scale * (vec4f(low | (high << vec4u(4u))) - 32.0);
}
