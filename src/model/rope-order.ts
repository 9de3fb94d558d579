// The two row orders of a q or k projection. Hugging Face rotates the pairs (i, i + d/2) of each
// head of d rows (rotate_half); llama2.c and llama.cpp's Llama graph rotate adjacent pairs
// (2i, 2i + 1). Converting a checkpoint moves rows within each head — HF's row t·d/2 + i is
// row 2i + t the other way (llama.cpp's LlamaModel.permute; HF's conversion of Meta checkpoints
// does the inverse). A row is any run of values: weights, LoRA B rows, a quantized row's blocks.

type Rows = Float32Array | Uint8Array;

function reorder<T extends Rows>(values: T, rows: number, heads: number, toHalves: boolean): T {
  const width = values.length / rows;
  const size = rows / heads;
  const out = new (values.constructor as new (n: number) => T)(values.length);
  for (let r = 0; r < rows; r++) {
    const within = r % size;
    const halves = r - within + (within % 2) * (size / 2) + Math.floor(within / 2);
    const [from, to] = toHalves ? [r, halves] : [halves, r];
    out.set(values.subarray(from * width, (from + 1) * width), to * width);
  }
  return out;
}

/** Rows in adjacent-pair order (llama2.c, llama.cpp) → HF's rotate-half order. */
export function interleavedToHalves<T extends Rows>(values: T, rows: number, heads: number): T {
  return reorder(values, rows, heads, true);
}

/** HF's rotate-half order → adjacent-pair order (what llama.cpp's converter writes). */
export function halvesToInterleaved<T extends Rows>(values: T, rows: number, heads: number): T {
  return reorder(values, rows, heads, false);
}
