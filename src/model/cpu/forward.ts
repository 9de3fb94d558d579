// The CPU reference forward pass of a Llama-family model, one token at a time with a KV cache,
// in the order of llama2.c's forward(): RMSNorm → q, k, v (+ bias) → RoPE (HF rotate_half) →
// causal attention with grouped KV heads → o → residual → RMSNorm → SwiGLU MLP → residual,
// then final norm and logits. Plain loops over Float32Arrays with f64 accumulators: slow, but
// the reference the GPU forward is tested against.
import type { ModelConfig } from '../config.ts';
import type { ModelWeights } from '../weights.ts';

export interface CpuModel {
  config: ModelConfig;
  /** Logits for the next token after `token` at position `pos` (positions must come in order). */
  step(token: number, pos: number): Float32Array;
}

export function createCpuModel(config: ModelConfig, weights: ModelWeights): CpuModel {
  const { hiddenSize: dim, numHeads, numKvHeads, headDim, numLayers, vocabSize } = config;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const w = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t.data;
  };
  const bias = (name: string) => (config.attentionBias ? w(name) : undefined);
  const cacheK = Array.from(
    { length: numLayers },
    () => new Float32Array(config.maxPositions * kvDim),
  );
  const cacheV = Array.from(
    { length: numLayers },
    () => new Float32Array(config.maxPositions * kvDim),
  );
  const head = config.tieWordEmbeddings ? w('model.embed_tokens.weight') : w('lm_head.weight');

  function step(token: number, pos: number): Float32Array {
    if (pos >= config.maxPositions)
      throw new RangeError(`position ${pos} beyond ${config.maxPositions}`);
    const x = w('model.embed_tokens.weight').slice(token * dim, (token + 1) * dim);
    for (let l = 0; l < numLayers; l++) {
      const p = `model.layers.${l}.`;
      const h = rmsNorm(x, w(`${p}input_layernorm.weight`), config.rmsNormEps);
      const q = linear(
        h,
        w(`${p}self_attn.q_proj.weight`),
        qDim,
        bias(`${p}self_attn.q_proj.bias`),
      );
      const k = linear(
        h,
        w(`${p}self_attn.k_proj.weight`),
        kvDim,
        bias(`${p}self_attn.k_proj.bias`),
      );
      const v = linear(
        h,
        w(`${p}self_attn.v_proj.weight`),
        kvDim,
        bias(`${p}self_attn.v_proj.bias`),
      );
      rope(q, numHeads, headDim, pos, config.ropeTheta);
      rope(k, numKvHeads, headDim, pos, config.ropeTheta);
      cacheK[l].set(k, pos * kvDim);
      cacheV[l].set(v, pos * kvDim);
      const attended = attention(q, cacheK[l], cacheV[l], pos, numHeads, numKvHeads, headDim);
      add(x, linear(attended, w(`${p}self_attn.o_proj.weight`), dim));
      const m = rmsNorm(x, w(`${p}post_attention_layernorm.weight`), config.rmsNormEps);
      const gate = linear(m, w(`${p}mlp.gate_proj.weight`), config.intermediateSize);
      const up = linear(m, w(`${p}mlp.up_proj.weight`), config.intermediateSize);
      for (let i = 0; i < gate.length; i++) gate[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
      add(x, linear(gate, w(`${p}mlp.down_proj.weight`), dim));
    }
    return linear(rmsNorm(x, w('model.norm.weight'), config.rmsNormEps), head, vocabSize);
  }

  return { config, step };
}

function rmsNorm(x: Float32Array, weight: Float32Array, eps: number): Float32Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * weight[i]);
}

/** y = W·x (+ b) for W (out × in), row-major. */
function linear(
  x: Float32Array,
  weight: Float32Array,
  out: number,
  b?: Float32Array,
): Float32Array {
  const n = x.length;
  const y = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o] : 0;
    for (let i = 0; i < n; i++) s += weight[o * n + i] * x[i];
    y[o] = s;
  }
  return y;
}

function add(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/** HF rotate_half RoPE: within each head, pairs (j, j + d/2) turn by pos·θ^(−2j/d). */
function rope(x: Float32Array, heads: number, headDim: number, pos: number, theta: number): void {
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      const angle = pos * theta ** (-(2 * j) / headDim);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = x[h * headDim + j];
      const b = x[h * headDim + j + half];
      x[h * headDim + j] = a * cos - b * sin;
      x[h * headDim + j + half] = b * cos + a * sin;
    }
  }
}

function attention(
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  pos: number,
  heads: number,
  kvHeads: number,
  headDim: number,
): Float32Array {
  const out = new Float32Array(heads * headDim);
  const kvDim = kvHeads * headDim;
  const group = heads / kvHeads;
  const scores = new Float64Array(pos + 1);
  for (let h = 0; h < heads; h++) {
    const kvOffset = Math.floor(h / group) * headDim;
    let max = -Infinity;
    for (let t = 0; t <= pos; t++) {
      let s = 0;
      for (let i = 0; i < headDim; i++) s += q[h * headDim + i] * keys[t * kvDim + kvOffset + i];
      scores[t] = s / Math.sqrt(headDim);
      max = Math.max(max, scores[t]);
    }
    let sum = 0;
    for (let t = 0; t <= pos; t++) sum += scores[t] = Math.exp(scores[t] - max);
    for (let t = 0; t <= pos; t++) {
      const weight = scores[t] / sum;
      for (let i = 0; i < headDim; i++)
        out[h * headDim + i] += weight * values[t * kvDim + kvOffset + i];
    }
  }
  return out;
}

/** Greedy decoding from `prompt` for `steps` positions; stops at BOS as llama2.c does. */
export function greedy(model: CpuModel, prompt: readonly number[], steps: number): number[] {
  const out: number[] = [];
  let token = prompt[0];
  for (let pos = 0; pos < steps; pos++) {
    const logits = model.step(token, pos);
    let next = pos + 1 < prompt.length ? prompt[pos + 1] : 0;
    if (pos + 1 >= prompt.length)
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[next]) next = i;
    if (next === model.config.bosTokenId) break;
    out.push(next);
    token = next;
  }
  return out;
}
