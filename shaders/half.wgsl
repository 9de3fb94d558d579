// Half-precision values packed in u32 words: element 2j in the low 16 bits of word j, as
// little-endian bytes lay them out. Widening either format to f32 is exact and needs no
// shader-f16: unpack2x16float for IEEE half, a shift for bfloat16 (the top half of an f32).

fn f16_pair(w: u32) -> vec2f {
  return unpack2x16float(w);
}

fn bf16_pair(w: u32) -> vec2f {
  return bitcast<vec2f>(vec2u(w << 16u, w & 0xffff0000u));
}
