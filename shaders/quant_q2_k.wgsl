// Q2_K (quant.wgsl): 256 values in 84 bytes: 16 bytes of 4-bit scale (low) and min (high) per 16
// values, 64 bytes of 2-bit quants (value 128h + 32s + l is bits 2s of byte 32h + l), f16 d,
// f16 dmin; value = (d·scale)·q − dmin·min.

fn dq(i: u32) -> f32 {
  let at = (i / 256u) * 84u;
  let e = i % 256u;
  let sc = q_byte(at + e / 16u);
  let q = (q_byte(at + 16u + 32u * (e / 128u) + e % 32u) >> (2u * ((e / 32u) % 4u))) & 3u;
  return (q_half(at + 80u) * f32(sc & 15u)) * f32(q) - q_half(at + 82u) * f32(sc >> 4u);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 256u) * 84u;
  let e = i % 256u;
  let sc = q_byte(at + e / 16u);
  let q = q_fields4(q_word(at + 16u + 32u * (e / 128u) + e % 32u), 2u * ((e / 32u) % 4u), 3u);
  return (q_half(at + 80u) * f32(sc & 15u)) * vec4f(q) - q_half(at + 82u) * f32(sc >> 4u);
}
