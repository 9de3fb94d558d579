// The f64 CPU reference of the whole model, for every architecture the families table builds:
// what the GPU forward, the GPU backward (through finite differences of the loss) and the CPU
// runner are all checked against. Plain loops, written for clarity, not speed. It runs one
// sequence at a time over a KV cache; low-rank adapter terms enter each linear module as
// y = x·Wᵀ + s·drop(x)·Aᵀ·Bᵀ, the term's variant changing that sum before the bias (DoRA's c∘z),
// a routing gate scaling h = drop(x)·Aᵀ per token before B.
// Dropout masks are the GPU's (shaders/dropout.wgsl's hash over the flattened batch).
import type { CpuFactors, CpuTermVariant } from '../../adapters/variants/engine.ts';
import { keeps } from '../../linalg/random.ts';
import { modulePath, type ModuleRole, type ModuleSpec } from '../architecture.ts';
import { moduleParts, type ModelConfig } from '../config.ts';
import { dropoutSeed } from '../transformer.ts';
import type { ModelWeights } from '../weights.ts';

/** A host adapter term: A [r × in], B [out × r], row-major f64. */
export interface CpuTerm extends CpuFactors {
  dropout?: number;
  /**
   * Its variant's part (src/adapters/variants/), made by the engine's cpuTerm, which computes
   * what depends on A and B (DoRA's row norms) so that a gradient check can hold it fixed;
   * plain LoRA when absent.
   */
  variant?: CpuTermVariant;
  /** Routing: a per-token gate on h = A·x before B (src/routing/), from the term's input and h. */
  gate?: (x: Float64Array, h: Float64Array) => Float64Array;
}

type Row = Float64Array;

function matVec(w: ArrayLike<number>, x: ArrayLike<number>, out: number): Row {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += w[o * n + i] * x[i];
    y[o] = s;
  }
  return y;
}

const GELU_C = Math.sqrt(2 / Math.PI);
const ACTIVATIONS = {
  silu: (v: number) => v / (1 + Math.exp(-v)),
  gelu_tanh: (v: number) => 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v))),
};

export interface ReferenceOptions {
  /** Adapter terms by module path (the embedding's path for embedding LoRA). */
  terms?: ReadonlyMap<string, CpuTerm>;
  /** Seeds adapter dropout as training does; without it dropout is off. */
  dropoutSeed?: number;
}

/**
 * A model with its KV cache: `run` appends tokens at the next positions and returns the logits
 * after each; `reset` starts a new sequence.
 */
export class ReferenceModel {
  private cacheK: Row[][] = [];
  private cacheV: Row[][] = [];

  constructor(
    readonly config: ModelConfig,
    private readonly weights: ModelWeights,
    private readonly options: ReferenceOptions = {},
  ) {
    this.reset();
  }

  /** Positions already in the cache. */
  get length(): number {
    return this.cacheK[0]?.length ?? 0;
  }

  reset(): void {
    this.cacheK = Array.from({ length: this.config.numLayers }, () => []);
    this.cacheV = Array.from({ length: this.config.numLayers }, () => []);
  }

  private w(name: string): Float32Array {
    const t = this.weights.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t.data;
  }

  private norm(x: Row, prefix: string): Row {
    const { kind, eps, offset } = this.config.arch.norm;
    const w = this.w(`${prefix}.weight`);
    const n = x.length;
    let mean = 0;
    if (kind === 'layer') mean = x.reduce((a, v) => a + v, 0) / n;
    let ss = 0;
    for (const v of x) ss += (v - mean) ** 2;
    const r = 1 / Math.sqrt(ss / n + eps);
    const y = x.map((v, i) => (v - mean) * r * (offset + w[i]));
    if (kind === 'layer') {
      const b = this.w(`${prefix}.bias`);
      for (let i = 0; i < n; i++) y[i] += b[i];
    }
    return y;
  }

  /** One linear module on one row; `row` is the token's index in the flattened batch. */
  private linear(x: Row, layer: number, m: ModuleSpec, row: number): Row {
    const { arch } = this.config;
    const path = modulePath(arch, layer, m);
    const y = matVec(this.w(`${path}.weight`), x, m.out);
    const term = this.options.terms?.get(path);
    if (term) {
      const seed = this.options.dropoutSeed;
      const keep = 1 - (term.dropout ?? 0);
      const mask = dropoutSeed(arch, seed ?? 0, layer, m, 0);
      const dropped =
        term.dropout && seed !== undefined
          ? x.map((v, i) => (keeps(mask, row * x.length + i, keep) ? v / keep : 0))
          : x;
      const h = matVec(term.a, dropped, term.rank);
      const delta = matVec(term.b, term.gate ? term.gate(dropped, h) : h, m.out);
      for (let o = 0; o < m.out; o++) y[o] += term.scale * delta[o];
      term.variant?.output(y);
    }
    if (m.bias) {
      const b = this.w(`${path}.bias`);
      for (let o = 0; o < m.out; o++) y[o] += b[o];
    }
    return y;
  }

  /** The outputs of the modules producing `roles` from one input, fused ones split. */
  private project(x: Row, layer: number, roles: readonly ModuleRole[], row: number) {
    const out: Partial<Record<ModuleRole, Row>> = {};
    for (const m of this.config.arch.modules) {
      const parts = moduleParts(this.config, m);
      if (!parts.some((p) => roles.includes(p.role))) continue;
      const y = this.linear(x, layer, m, row);
      let col0 = 0;
      for (const part of parts) {
        out[part.role] = y.subarray(col0, col0 + part.width);
        col0 += part.width;
      }
    }
    return out;
  }

  /** Per-head RMSNorm (q/k norms) in place. */
  private headNorm(x: Row, heads: number, prefix: string): void {
    const { headDim } = this.config;
    for (let h = 0; h < heads; h++) {
      const part = x.subarray(h * headDim, (h + 1) * headDim);
      const { eps, offset } = this.config.arch.norm;
      const w = this.w(`${prefix}.weight`);
      let ss = 0;
      for (const v of part) ss += v * v;
      const r = 1 / Math.sqrt(ss / headDim + eps);
      for (let i = 0; i < headDim; i++) part[i] = part[i] * r * (offset + w[i]);
    }
  }

  /** HF rotate_half RoPE over each head's first rotaryDims values, in place. */
  private rope(x: Row, heads: number, pos: number, table: number): void {
    const { headDim, arch } = this.config;
    const { invFreq, attentionFactor } = arch.ropes[table];
    const half = arch.rotaryDims / 2;
    for (let h = 0; h < heads; h++)
      for (let j = 0; j < half; j++) {
        const angle = pos * invFreq[j];
        const cos = Math.cos(angle) * attentionFactor;
        const sin = Math.sin(angle) * attentionFactor;
        const i0 = h * headDim + j;
        const [a, b] = [x[i0], x[i0 + half]];
        x[i0] = a * cos - b * sin;
        x[i0 + half] = b * cos + a * sin;
      }
  }

  /** The residual after one layer for the token at `pos` (its k and v join the cache). */
  private layer(x: Row, l: number, pos: number, row: number): Row {
    const c = this.config;
    const { arch, numHeads, numKvHeads, headDim } = c;
    const p = `${arch.layerPrefix}${l}.`;
    const h1 = this.norm(x, p + arch.norms.input);
    const { q, k, v } = this.project(h1, l, ['q', 'k', 'v'], row);
    const [qr, kr] = [Float64Array.from(q!), Float64Array.from(k!)];
    if (arch.qkNorm) {
      this.headNorm(qr, numHeads, p + arch.qkNorm.q);
      this.headNorm(kr, numKvHeads, p + arch.qkNorm.k);
    }
    const { rope: table, window } = arch.layers[l];
    if (table !== null) {
      this.rope(qr, numHeads, pos, table);
      this.rope(kr, numKvHeads, pos, table);
    }
    this.cacheK[l].push(kr);
    this.cacheV[l].push(Float64Array.from(v!));
    const keys = this.cacheK[l];
    const first = window === null ? 0 : Math.max(0, keys.length - window);
    const attended = new Float64Array(numHeads * headDim);
    const group = numHeads / numKvHeads;
    for (let h = 0; h < numHeads; h++) {
      const g = Math.floor(h / group) * headDim;
      const scores: number[] = [];
      for (let s = first; s < keys.length; s++) {
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += qr[h * headDim + i] * keys[s][g + i];
        scores.push(dot * arch.attentionScale);
      }
      const max = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - max));
      const z = e.reduce((a, b) => a + b, 0);
      e.forEach((weight, j) => {
        const value = this.cacheV[l][first + j];
        for (let i = 0; i < headDim; i++) attended[h * headDim + i] += (weight / z) * value[g + i];
      });
    }
    let o = this.project(attended, l, ['o'], row).o!;
    if (arch.norms.postAttention) o = this.norm(o, p + arch.norms.postAttention);
    const x2 = x.map((val, i) => val + o[i]);
    const m = this.norm(x2, p + arch.norms.mlp);
    const { gate, up } = this.project(m, l, ['gate', 'up'], row);
    const f = ACTIVATIONS[arch.activation];
    const act = gate ? gate.map((gv, i) => f(gv) * up![i]) : up!.map(f);
    let down = this.project(act, l, ['down'], row).down!;
    if (arch.norms.postMlp) down = this.norm(down, p + arch.norms.postMlp);
    return x2.map((val, i) => val + down[i]);
  }

  private embed(token: number, pos: number): Row {
    const { arch, hiddenSize: d, vocabSize } = this.config;
    const x = Float64Array.from(
      this.w(`${arch.embedding}.weight`).subarray(token * d, (token + 1) * d),
    );
    const term = this.options.terms?.get(arch.embedding);
    if (term) {
      // Embedding LoRA: A [r × vocab] (its column for the token), B [d × r].
      const h = Float64Array.from({ length: term.rank }, (_, r) => term.a[r * vocabSize + token]);
      const delta = matVec(term.b, h, d);
      for (let i = 0; i < d; i++) x[i] += term.scale * delta[i];
    }
    for (let i = 0; i < d; i++) x[i] *= arch.embedScale;
    if (arch.positions) {
      const wpe = this.w(`${arch.positions}.weight`);
      for (let i = 0; i < d; i++) x[i] += wpe[pos * d + i];
    }
    return x;
  }

  private logits(x: Row): Row {
    const { arch, vocabSize } = this.config;
    const logits = matVec(this.w(`${arch.head}.weight`), this.norm(x, arch.norms.final), vocabSize);
    const cap = arch.finalSoftcap;
    return cap === null ? logits : logits.map((v) => cap * Math.tanh(v / cap));
  }

  /**
   * Runs `tokens` from position `pos0` (default: after the cache; earlier positions are dropped
   * from it) and returns the logits after each. `row0` is the first token's index in the
   * flattened training batch (dropout masks depend on it).
   */
  run(tokens: ArrayLike<number>, { pos0 = this.length, row0 = 0 } = {}): Row[] {
    if (pos0 > this.length)
      throw new RangeError(`position ${pos0}: the cache holds ${this.length}`);
    for (const cache of [...this.cacheK, ...this.cacheV]) cache.length = pos0;
    const out: Row[] = [];
    for (let t = 0; t < tokens.length; t++) {
      const pos = this.length;
      if (pos >= this.config.maxPositions)
        throw new RangeError(`position ${pos} beyond ${this.config.maxPositions}`);
      let x = this.embed(tokens[t], pos);
      for (let l = 0; l < this.config.numLayers; l++) x = this.layer(x, l, pos, row0 + t);
      out.push(this.logits(x));
    }
    return out;
  }

  /** The logits after `token` at `pos` (later positions are dropped from the cache), in f32. */
  step(token: number, pos: number): Float32Array {
    return Float32Array.from(this.run([token], { pos0: pos })[0]);
  }
}

export interface CpuLossInput extends ReferenceOptions {
  config: ModelConfig;
  weights: ModelWeights;
  terms: ReadonlyMap<string, CpuTerm>;
  ids: ArrayLike<number>;
  targets: ArrayLike<number>;
  seqLen: number;
}

/** Σ next-token cross-entropy over trained targets (< 0: not trained) of packed sequences. */
export function cpuBatchLoss(input: CpuLossInput): number {
  const model = new ReferenceModel(input.config, input.weights, input);
  let total = 0;
  for (let start = 0; start < input.ids.length; start += input.seqLen) {
    model.reset();
    const ids = Array.from({ length: input.seqLen }, (_, t) => input.ids[start + t]);
    model.run(ids, { row0: start }).forEach((logits, t) => {
      const target = input.targets[start + t];
      if (target < 0) return;
      const max = Math.max(...logits);
      const z = logits.reduce((a, v) => a + Math.exp(v - max), 0);
      total += Math.log(z) + max - logits[target];
    });
  }
  return total;
}

/** Greedy decoding from `prompt` for `steps` positions; stops at BOS as llama2.c does. */
export function greedy(model: ReferenceModel, prompt: readonly number[], steps: number): number[] {
  model.reset();
  const out: number[] = [];
  let token = prompt[0];
  for (let pos = 0; pos < steps; pos++) {
    const logits = model.run([token])[0];
    let next = pos + 1 < prompt.length ? prompt[pos + 1] : 0;
    if (pos + 1 >= prompt.length)
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[next]) next = i;
    if (next === model.config.bosTokenId) break;
    out.push(next);
    token = next;
  }
  return out;
}
