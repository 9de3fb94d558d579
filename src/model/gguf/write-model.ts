// A Llama model of a given shape with seeded random weights, written as a llama.cpp GGUF model
// file in F16, Q8_0 or Q4_K: what the GGUF benchmark (src/model/gguf-1b.bench.ts) loads into both
// our engine and llama.cpp, so both run the same file. The layout is what llama.cpp's
// convert_hf_to_gguf.py writes for a Llama 3 model with tied embeddings:
// - llama.* hyper-parameters and llama.cpp's tensor names (token_embd, blk.N.attn_q, …, no
//   output.weight: the head is the embedding), norms in F32, every matrix in the file's type.
// - A byte-level BPE tokenizer as Llama 3's is stored (tokenizer.ggml.model "gpt2", pre
//   "llama-bpe"): the 256 byte tokens, made-up ordinary tokens up to the last `specialTokens`
//   ids, which are control tokens named as Llama 3's (<|begin_of_text|> is BOS), and no merges.
//   Text would tokenize into single bytes; the benchmark feeds token ids.
// The weights are random, so they are drawn directly in llama.cpp's row order (no q/k
// permutation to undo). Every file of a seed holds the same values: the same draws, then
// rounded to f16 or quantized by src/model/quantize.ts (ggml's reference quantizers), so the
// three files are one model at three precisions. Matrices are uniform with std 0.02 (the usual
// initialisation), norms uniform in [0.9, 1.1]. Written tensor by tensor to the file, so a model
// of gigabytes never sits in memory whole.
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { seededRandom } from '../../linalg/random.ts';
import { encodeHalf } from '../../gpu/half.ts';
import { quantize } from '../quantize.ts';
import { GGML_QUANT_VERSION } from './constants.ts';
import {
  alignUp,
  f32Bytes,
  ggufHeader,
  tensorBytes,
  type GgufTensorEntry,
  type GgufWriteValue,
} from './write.ts';

export interface LlamaGgufShape {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Tokens in all, the last `specialTokens` of them control tokens. */
  vocabSize: number;
  specialTokens: number;
  contextLength: number;
  ropeTheta: number;
  rmsNormEps: number;
}

/** The matrices' type in the file. */
export type ModelFileType = 'F16' | 'Q8_0' | 'Q4_K';

/** GPT-2's printable stand-ins for the 256 bytes (its bytes_to_unicode), in byte order. */
function byteTokens(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

/** Llama 3's special token names for the ids from its first special token on. */
function specialToken(k: number): string {
  const named = [
    '<|begin_of_text|>',
    '<|end_of_text|>',
    '<|reserved_special_token_0|>',
    '<|reserved_special_token_1|>',
    '<|finetune_right_pad_id|>',
    '<|reserved_special_token_2|>',
    '<|start_header_id|>',
    '<|end_header_id|>',
    '<|eom_id|>',
    '<|eot_id|>',
    '<|python_tag|>',
  ];
  return named[k] ?? `<|reserved_special_token_${k - 8}|>`;
}

function tokenizerMetadata(shape: LlamaGgufShape): [string, GgufWriteValue][] {
  const { vocabSize, specialTokens } = shape;
  const bytes = byteTokens();
  const firstSpecial = vocabSize - specialTokens;
  if (firstSpecial < bytes.length || specialTokens < 2)
    throw new RangeError(
      `a vocabulary of ${vocabSize} cannot hold 256 byte tokens and ${specialTokens} special ones`,
    );
  const tokens = Array.from({ length: vocabSize }, (_, i) =>
    i < bytes.length
      ? bytes[i]
      : i < firstSpecial
        ? `tok${i.toString(36)}`
        : specialToken(i - firstSpecial),
  );
  const types = Int32Array.from(tokens, (_, i) => (i < firstSpecial ? 1 : 3));
  return [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'llama-bpe' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: [] }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: firstSpecial }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: firstSpecial + 1 }],
  ];
}

function metadata(shape: LlamaGgufShape, type: ModelFileType): [string, GgufWriteValue][] {
  const u32 = (value: number): GgufWriteValue => ({ type: 'u32', value });
  return [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: `random llama (${type})` }],
    ['llama.block_count', u32(shape.numLayers)],
    ['llama.context_length', u32(shape.contextLength)],
    ['llama.embedding_length', u32(shape.hiddenSize)],
    ['llama.feed_forward_length', u32(shape.intermediateSize)],
    ['llama.attention.head_count', u32(shape.numHeads)],
    ['llama.attention.head_count_kv', u32(shape.numKvHeads)],
    ['llama.attention.key_length', u32(shape.headDim)],
    ['llama.attention.value_length', u32(shape.headDim)],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: shape.rmsNormEps }],
    ['llama.rope.freq_base', { type: 'f32', value: shape.ropeTheta }],
    ['llama.rope.dimension_count', u32(shape.headDim)],
    ['llama.vocab_size', u32(shape.vocabSize)],
    ...tokenizerMetadata(shape),
    // general.file_type is left out: llama.cpp then names the type from the tensors' own.
    ['general.quantization_version', u32(GGML_QUANT_VERSION)],
  ];
}

interface PlannedTensor extends GgufTensorEntry {
  norm: boolean;
}

function tensorPlan(shape: LlamaGgufShape, type: ModelFileType): PlannedTensor[] {
  const { hiddenSize: h, intermediateSize: ff, headDim } = shape;
  const matrix = (name: string, cols: number, rows: number): PlannedTensor => ({
    name,
    dims: [cols, rows],
    type,
    norm: false,
  });
  const norm = (name: string): PlannedTensor => ({ name, dims: [h], type: 'F32', norm: true });
  const plan = [matrix('token_embd.weight', h, shape.vocabSize), norm('output_norm.weight')];
  for (let l = 0; l < shape.numLayers; l++) {
    const b = `blk.${l}.`;
    plan.push(
      norm(`${b}attn_norm.weight`),
      matrix(`${b}attn_q.weight`, h, shape.numHeads * headDim),
      matrix(`${b}attn_k.weight`, h, shape.numKvHeads * headDim),
      matrix(`${b}attn_v.weight`, h, shape.numKvHeads * headDim),
      matrix(`${b}attn_output.weight`, shape.numHeads * headDim, h),
      norm(`${b}ffn_norm.weight`),
      matrix(`${b}ffn_gate.weight`, h, ff),
      matrix(`${b}ffn_up.weight`, h, ff),
      matrix(`${b}ffn_down.weight`, ff, h),
    );
  }
  return plan;
}

/** Tensor i's values: its own seeded stream, so every file of a seed draws the same ones. */
function values(t: PlannedTensor, seed: number, i: number): Float32Array {
  const random = seededRandom(seed * 1_000_003 + i);
  const n = t.dims.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  // Uniform on [-a, a] has std a / √3.
  const [center, half] = t.norm ? [1, 0.1] : [0, 0.02 * Math.sqrt(3)];
  for (let k = 0; k < n; k++) out[k] = center + half * (2 * random() - 1);
  return out;
}

function encoded(t: PlannedTensor, x: Float32Array): Uint8Array {
  if (t.type === 'F32') return f32Bytes(x);
  // GGUF is little-endian, as is every platform this runs on.
  if (t.type === 'F16') return new Uint8Array(encodeHalf(x, 'f16').buffer);
  if (t.type === 'Q8_0' || t.type === 'Q4_K') return quantize(t.type, x);
  throw new Error(`no writer for ${t.type}`);
}

/** writeSync may write less than asked. */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
}

/**
 * Writes the model to `path` (through `path.partial`, renamed when complete, so an interrupted
 * run leaves no truncated model); `progress` hears each tensor written.
 */
export function writeRandomLlamaGguf(
  path: string,
  shape: LlamaGgufShape,
  type: ModelFileType,
  seed: number,
  progress: (tensor: string, done: number, total: number) => void = () => {},
): void {
  const plan = tensorPlan(shape, type);
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w');
  try {
    writeAll(fd, ggufHeader(metadata(shape, type), plan));
    plan.forEach((t, i) => {
      const bytes = encoded(t, values(t, seed, i));
      writeAll(fd, bytes);
      writeAll(fd, new Uint8Array(alignUp(tensorBytes(t)) - bytes.length));
      progress(t.name, i + 1, plan.length);
    });
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path);
}
