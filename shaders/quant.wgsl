// Reading ggml's quantized blocks (GGUF tensor data) from u32 words. Blocks are 18, 20, 22, 24,
// 34, 84, 110, 144, 176 or 210 bytes, so most are not word-aligned: every field is read at a byte
// offset. `qw(w)`, word w of the raw bytes, is defined by the file that binds them
// (matmul_b_quant.wgsl, dequant.wgsl); a quant_<type>.wgsl file, built on these helpers, defines
//   dq(i):  element i as f32;  dq4(i): elements i … i+3 (i a multiple of 4, so one block)
// with ggml's arithmetic (quant-types.ts's CPU decoders, which round where they round).
// Scales are f16 bits widened with unpack2x16float (exact; no shader-f16 needed).

// Byte `at`.
fn q_byte(at: u32) -> u32 {
  return (qw(at / 4u) >> (8u * (at % 4u))) & 0xffu;
}

// Byte `at` as a signed int8.
fn q_int8(at: u32) -> i32 {
  return bitcast<i32>(q_byte(at) << 24u) >> 24u;
}

// The f16 at byte `at` (even: every f16 of a block lies at an even offset, blocks have even sizes).
fn q_half(at: u32) -> f32 {
  return unpack2x16float(qw(at / 4u) >> (8u * (at % 4u))).x;
}

// Bytes at … at+3 as a little-endian u32, at any offset.
fn q_word(at: u32) -> u32 {
  let s = 8u * (at % 4u);
  let lo = qw(at / 4u);
  if (s == 0u) {
    return lo;
  }
  return (lo >> s) | (qw(at / 4u + 1u) << (32u - s));
}

// The four bytes of a word, each shifted right by `shift` and masked: four quants in one go.
fn q_fields4(w: u32, shift: u32, mask: u32) -> vec4u {
  return (vec4u(w) >> (vec4u(0u, 8u, 16u, 24u) + shift)) & vec4u(mask);
}

// The four bytes of a word as signed int8s.
fn q_int8x4(w: u32) -> vec4i {
  return bitcast<vec4i>(vec4u(w) << vec4u(24u, 16u, 8u, 0u)) >> vec4u(24u);
}

// The 6-bit scale (x) and min (y) of sub-block j (0–7) of a Q4_K/Q5_K block whose 12 packed
// bytes start at `at` (ggml-quants.c get_scale_min_k4).
fn q_scale_min_k4(at: u32, j: u32) -> vec2u {
  if (j < 4u) {
    return vec2u(q_byte(at + j) & 63u, q_byte(at + j + 4u) & 63u);
  }
  let b = q_byte(at + j + 4u);
  let scale = (b & 15u) | ((q_byte(at + j - 4u) >> 6u) << 4u);
  return vec2u(scale, (b >> 4u) | ((q_byte(at + j) >> 6u) << 4u));
}
