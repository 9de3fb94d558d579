// llama2.c checkpoints (the legacy float32 `.bin` of karpathy/llama2.c, docs/design.md §2):
// 7 int32 header fields, then every weight as float32 in a fixed order. Loaded into the same
// in-memory model as an HF folder: HF names, (out, in) layout, and wq/wk rows permuted from
// llama2.c's interleaved RoPE pairs (2j, 2j+1) to HF's rotate_half pairs (j, j + d/2).
import type { ModelConfig } from './config.ts';
import { FormatError } from './errors.ts';
import { llamaConfigJson } from './families/llama.ts';
import { interleavedToHalves } from './rope-order.ts';
import { parseHfConfig } from './hf-config.ts';
import type { ModelWeights } from './weights.ts';

const HEADER_BYTES = 7 * 4;

export function readLlama2c(
  bytes: Uint8Array,
  file: string,
): { config: ModelConfig; weights: ModelWeights } {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new FormatError(
      file,
      `too short for a llama2.c checkpoint (${bytes.byteLength} bytes; the header takes 28)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [dim, hidden, layers, heads, kvHeads, vocabSigned, seqLen] = Array.from(
    { length: 7 },
    (_, i) => view.getInt32(i * 4, true),
  );
  // A negative vocab size marks a separate classifier after the other weights.
  const shared = vocabSigned > 0;
  const vocab = Math.abs(vocabSigned);
  const fields = {
    dim,
    hidden_dim: hidden,
    n_layers: layers,
    n_heads: heads,
    n_kv_heads: kvHeads,
    vocab,
    seq_len: seqLen,
  };
  for (const [k, v] of Object.entries(fields)) {
    if (!(v > 0 && v < 1 << 24))
      throw new FormatError(file, `header field ${k} = ${v} is not a plausible size`);
  }
  if (dim % heads !== 0 || heads % kvHeads !== 0 || (dim / heads) % 2 !== 0) {
    throw new FormatError(
      file,
      `inconsistent header: dim ${dim}, ${heads} heads, ${kvHeads} KV heads`,
    );
  }
  const headDim = dim / heads;
  const kvDim = kvHeads * headDim;
  const sizes = {
    embed: vocab * dim,
    attnNorm: layers * dim,
    wq: layers * dim * dim,
    wk: layers * kvDim * dim,
    wv: layers * kvDim * dim,
    wo: layers * dim * dim,
    ffnNorm: layers * dim,
    w1: layers * hidden * dim,
    w2: layers * dim * hidden,
    w3: layers * hidden * dim,
    finalNorm: dim,
    // Two RoPE tables (seq_len × head_dim/2 each) that we recompute instead.
    rope: seqLen * headDim,
    classifier: shared ? 0 : vocab * dim,
  };
  const expected = HEADER_BYTES + 4 * Object.values(sizes).reduce((a, b) => a + b, 0);
  if (bytes.byteLength !== expected) {
    throw new FormatError(
      file,
      `holds ${bytes.byteLength} bytes but its header (dim ${dim}, ${layers} layers, vocab ${vocab}) implies ${expected}` +
        (bytes.byteLength < expected ? ' (truncated?)' : ''),
    );
  }

  let offset = HEADER_BYTES;
  const take = (count: number): Float32Array => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + i * 4, true);
    offset += count * 4;
    return out;
  };
  const perLayer = (all: Float32Array, l: number) =>
    all.subarray((l * all.length) / layers, ((l + 1) * all.length) / layers);

  const embed = take(sizes.embed);
  const attnNorm = take(sizes.attnNorm);
  const wq = take(sizes.wq);
  const wk = take(sizes.wk);
  const wv = take(sizes.wv);
  const wo = take(sizes.wo);
  const ffnNorm = take(sizes.ffnNorm);
  const w1 = take(sizes.w1);
  const w2 = take(sizes.w2);
  const w3 = take(sizes.w3);
  const finalNorm = take(sizes.finalNorm);
  offset += sizes.rope * 4;
  const classifier = shared ? undefined : take(sizes.classifier);

  const weights: ModelWeights = new Map();
  const put = (name: string, shape: number[], data: Float32Array) =>
    weights.set(name, { shape, data: data.slice() });
  put('model.embed_tokens.weight', [vocab, dim], embed);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    put(`${p}input_layernorm.weight`, [dim], perLayer(attnNorm, l));
    put(
      `${p}self_attn.q_proj.weight`,
      [dim, dim],
      interleavedToHalves(perLayer(wq, l), heads * headDim, heads),
    );
    put(
      `${p}self_attn.k_proj.weight`,
      [kvDim, dim],
      interleavedToHalves(perLayer(wk, l), kvHeads * headDim, kvHeads),
    );
    put(`${p}self_attn.v_proj.weight`, [kvDim, dim], perLayer(wv, l));
    put(`${p}self_attn.o_proj.weight`, [dim, dim], perLayer(wo, l));
    put(`${p}post_attention_layernorm.weight`, [dim], perLayer(ffnNorm, l));
    put(`${p}mlp.gate_proj.weight`, [hidden, dim], perLayer(w1, l));
    put(`${p}mlp.down_proj.weight`, [dim, hidden], perLayer(w2, l));
    put(`${p}mlp.up_proj.weight`, [hidden, dim], perLayer(w3, l));
  }
  put('model.norm.weight', [dim], finalNorm);
  if (classifier) put('lm_head.weight', [vocab, dim], classifier);

  const config: ModelConfig = {
    ...parseHfConfig(
      llamaConfigJson({
        hiddenSize: dim,
        intermediateSize: hidden,
        numLayers: layers,
        numHeads: heads,
        numKvHeads: kvHeads,
        headDim,
        vocabSize: vocab,
        maxPositions: seqLen,
        tieWordEmbeddings: shared,
        // llama2.c ends generation when BOS comes next (a new story would start).
        eosTokenIds: [1, 2],
      }),
    ),
    modelType: 'llama2c',
  };
  return { config, weights };
}
