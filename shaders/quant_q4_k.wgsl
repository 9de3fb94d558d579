// Q4_K (quant.wgsl): 256 values in 144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins
// (one pair per 32 values), 128 bytes of nibbles: sub-block j's value l is nibble j % 2 of byte
// 32·(j / 2) + l; value = (d·scale)·q − dmin·min.

fn dq(i: u32) -> f32 {
  let at = (i / 256u) * 144u;
  let e = i % 256u;
  let j = e / 32u;
  let sm = q_scale_min_k4(at + 4u, j);
  let q = (q_byte(at + 16u + 32u * (j / 2u) + e % 32u) >> (4u * (j % 2u))) & 15u;
  return (q_half(at) * f32(sm.x)) * f32(q) - q_half(at + 2u) * f32(sm.y);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 256u) * 144u;
  let e = i % 256u;
  let j = e / 32u;
  let sm = q_scale_min_k4(at + 4u, j);
  let q = q_fields4(q_word(at + 16u + 32u * (j / 2u) + e % 32u), 4u * (j % 2u), 15u);
  return (q_half(at) * f32(sm.x)) * vec4f(q) - q_half(at + 2u) * f32(sm.y);
}
