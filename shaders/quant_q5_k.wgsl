// Q5_K (quant.wgsl): 256 values in 176 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins,
// 32 bytes of fifth bits (bit j of byte l for sub-block j's value l), 128 bytes of nibbles placed
// as in Q4_K; value = (d·scale)·q − dmin·min.

fn dq(i: u32) -> f32 {
  let at = (i / 256u) * 176u;
  let e = i % 256u;
  let j = e / 32u;
  let sm = q_scale_min_k4(at + 4u, j);
  let high = (q_byte(at + 16u + e % 32u) >> j) & 1u;
  let q = ((q_byte(at + 48u + 32u * (j / 2u) + e % 32u) >> (4u * (j % 2u))) & 15u) | (high << 4u);
  return (q_half(at) * f32(sm.x)) * f32(q) - q_half(at + 2u) * f32(sm.y);
}

fn dq4(i: u32) -> vec4f {
  let at = (i / 256u) * 176u;
  let e = i % 256u;
  let j = e / 32u;
  let sm = q_scale_min_k4(at + 4u, j);
  let high = q_fields4(q_word(at + 16u + e % 32u), j, 1u);
  let low = q_fields4(q_word(at + 48u + 32u * (j / 2u) + e % 32u), 4u * (j % 2u), 15u);
  let q = low | (high << vec4u(4u));
  return (q_half(at) * f32(sm.x)) * vec4f(q) - q_half(at + 2u) * f32(sm.y);
}
