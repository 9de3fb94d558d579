// GGUF's fixed numbers, shared by the model reader (read.ts) and the LoRA writer
// (src/adapters/gguf.ts). The values are gguf-py's (gguf/constants.py: GGUF_MAGIC, GGUF_VERSION,
// GGUF_DEFAULT_ALIGNMENT, GGML_QUANT_VERSION, GGUFValueType) and ggml's (gguf.h's gguf_type).

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** The version written. v3 only added big-endian files to v2, so a little-endian v2 reads the same. */
export const GGUF_VERSION = 3;
/** Tensor data alignment when general.alignment is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's quantization format version, written by every converter (GGML_QNT_VERSION). */
export const GGML_QUANT_VERSION = 2;

/** gguf_type: the code of each metadata value type. */
export const GGUF_VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPE;
