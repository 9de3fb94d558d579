// The CPU reference of the training loss in f64: packed sequences through a Llama model with
// low-rank adapter terms (y = x·Wᵀ + b + s·drop(x)·Aᵀ·Bᵀ, its variant changing z = x·Wᵀ +
// s·drop(x)·Aᵀ·Bᵀ before the bias: DoRA's c∘z, c = m / norm), summed next-token cross-entropy
// over trained targets. Written
// for clarity, not speed: the finite-difference gradient checks run it thousands of times on tiny
// models. Dropout masks are the GPU's (shaders/dropout.wgsl's hash).
import type { CpuFactors, CpuTermVariant } from '../../adapters/variants/engine.ts';
import { keeps } from '../../linalg/random.ts';
import type { ModelConfig } from '../../model/config.ts';
import { modulePath, type LinearModule } from '../../model/modules.ts';
import { dropoutSeed } from '../../model/transformer.ts';
import type { ModelWeights } from '../../model/weights.ts';

/** A host adapter term: A [r × in], B [out × r], row-major f64. */
export interface CpuTerm extends CpuFactors {
  dropout?: number;
  /**
   * Its variant's part (src/adapters/variants/), made by the engine's cpuTerm, which computes
   * what depends on A and B (DoRA's row norms) so that a gradient check can hold it fixed;
   * plain LoRA when absent.
   */
  variant?: CpuTermVariant;
}

export interface CpuLossInput {
  config: ModelConfig;
  weights: ModelWeights;
  terms: ReadonlyMap<string, CpuTerm>;
  ids: ArrayLike<number>;
  targets: ArrayLike<number>;
  seqLen: number;
  dropoutSeed?: number;
}

type Rows = Float64Array[];

function matVec(w: ArrayLike<number>, x: Float64Array, out: number): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += w[o * n + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

export function cpuBatchLoss(input: CpuLossInput): number {
  const { config: c, weights, terms, ids, targets, seqLen } = input;
  const w = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`missing ${name}`);
    return t.data;
  };
  const n = ids.length;
  const linear = (xs: Rows, layer: number, module: LinearModule, out: number): Rows => {
    const path = modulePath(layer, module);
    const weight = w(`${path}.weight`);
    const bias =
      c.attentionBias && ['q_proj', 'k_proj', 'v_proj'].includes(module)
        ? w(`${path}.bias`)
        : undefined;
    const term = terms.get(path);
    const width = xs[0].length;
    return xs.map((x, row) => {
      const y = matVec(weight, x, out);
      if (term) {
        const keep = 1 - (term.dropout ?? 0);
        const seed = dropoutSeed(input.dropoutSeed ?? 0, layer, module, 0);
        // The mask indexes the flattened [rows × width] input, as on the GPU.
        const dropped =
          term.dropout && input.dropoutSeed !== undefined
            ? x.map((v, i) => (keeps(seed, row * width + i, keep) ? v / keep : 0))
            : x;
        const h = matVec(term.a, dropped, term.rank);
        const delta = matVec(term.b, h, out);
        for (let o = 0; o < out; o++) y[o] += term.scale * delta[o];
        term.variant?.output(y);
      }
      if (bias) for (let o = 0; o < out; o++) y[o] += bias[o];
      return y;
    });
  };

  let xs: Rows = Array.from({ length: n }, (_, t) =>
    Float64Array.from(
      w('model.embed_tokens.weight').subarray(ids[t] * c.hiddenSize, (ids[t] + 1) * c.hiddenSize),
    ),
  );
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const half = c.headDim / 2;
  const rope = (rows: Rows, heads: number) => {
    rows.forEach((x, t) => {
      const pos = t % seqLen;
      for (let h = 0; h < heads; h++)
        for (let j = 0; j < half; j++) {
          const angle = pos * c.ropeTheta ** (-(2 * j) / c.headDim);
          const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
          const i0 = h * c.headDim + j;
          const [a, b] = [x[i0], x[i0 + half]];
          x[i0] = a * cos - b * sin;
          x[i0 + half] = b * cos + a * sin;
        }
    });
  };
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const h1 = xs.map((x) => rmsNorm(x, w(`${p}input_layernorm.weight`), c.rmsNormEps));
    const q = linear(h1, l, 'q_proj', qDim);
    const k = linear(h1, l, 'k_proj', kvDim);
    const v = linear(h1, l, 'v_proj', kvDim);
    rope(q, c.numHeads);
    rope(k, c.numKvHeads);
    const attended: Rows = q.map((qt, t) => {
      const out = new Float64Array(qDim);
      const first = t - (t % seqLen);
      for (let h = 0; h < c.numHeads; h++) {
        const g = Math.floor(h / (c.numHeads / c.numKvHeads));
        const scores: number[] = [];
        for (let s = first; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < c.headDim; i++)
            dot += qt[h * c.headDim + i] * k[s][g * c.headDim + i];
          scores.push(dot / Math.sqrt(c.headDim));
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b, 0);
        e.forEach((p, j) => {
          for (let i = 0; i < c.headDim; i++)
            out[h * c.headDim + i] += (p / z) * v[first + j][g * c.headDim + i];
        });
      }
      return out;
    });
    const o = linear(attended, l, 'o_proj', c.hiddenSize);
    const x2 = xs.map((x, t) => x.map((val, i) => val + o[t][i]));
    const m = x2.map((x) => rmsNorm(x, w(`${p}post_attention_layernorm.weight`), c.rmsNormEps));
    const gate = linear(m, l, 'gate_proj', c.intermediateSize);
    const up = linear(m, l, 'up_proj', c.intermediateSize);
    const act = gate.map((g, t) => g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[t][i]));
    const down = linear(act, l, 'down_proj', c.hiddenSize);
    xs = x2.map((x, t) => x.map((val, i) => val + down[t][i]));
  }
  const head = w(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  let total = 0;
  xs.forEach((x, t) => {
    if (targets[t] < 0) return;
    const logits = matVec(head, rmsNorm(x, w('model.norm.weight'), c.rmsNormEps), c.vocabSize);
    const max = Math.max(...logits);
    const z = logits.reduce((a, v) => a + Math.exp(v - max), 0);
    total += Math.log(z) + max - logits[targets[t]];
  });
  return total;
}
