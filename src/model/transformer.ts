// One Llama layer and the output head on the GPU, recorded into a batch: the computation shared
// by inference (over a KV cache, forward.ts) and training (over packed sequences, keeping the
// activations that src/train/backward.ts needs). Linear modules may carry low-rank adapter terms
// applied at run time, each as its adapter variant adds it: y = x·Wᵀ (+ b) + Σ scale·(x·Aᵀ)·Bᵀ
// for plain LoRA.
import type { Batch } from '../gpu/dispatch.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { affine, binary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import type { ModelConfig } from './config.ts';
import { LINEAR_MODULES, modulePath, type LinearModule } from './modules.ts';
import {
  attention,
  dropout,
  gatherRows,
  rmsNorm,
  rope,
  swiglu,
  writeRows,
  type Positions,
} from './ops.ts';

/** A low-rank term on one linear module: A [r × in], B [out × r]. */
export interface AdapterTerm {
  a: Tensor;
  b: Tensor;
  /**
   * What multiplies B·A in the variant's forward: PEFT's scaling, times the composition weight
   * for plain LoRA.
   */
  scale: number;
  /** Dropout probability on the term's input (training only). */
  dropout?: number;
  /** How the term enters the output (embedding terms are plain LoRA and ignore it). */
  variant: TermVariant;
}

type Keep = (t: Tensor) => Tensor;

/**
 * How a term enters its module's output and its backward pass, by its adapter variant
 * (src/adapters/variants/): plain LoRA adds scale·h·Bᵀ, DoRA rescales the rows of
 * x·Wᵀ + scale·h·Bᵀ. It holds what the variant precomputed (DoRA's row scales) and, for a term
 * being trained, where the gradients of the variant's own vectors go.
 */
export interface TermVariant {
  /** Reads x·Wᵀ as it was: the module's output then starts as a copy of it. */
  readonly readsBase: boolean;
  /** Adds the term to y, from x·Wᵀ (`base`) and h = drop(x)·Aᵀ; returns what its backward reads. */
  forward(
    batch: Batch,
    term: AdapterTerm,
    io: { base: Tensor; h: Tensor; y: Tensor; keep: Keep },
  ): Tensor | undefined;
  /**
   * Training: the gradient that reaches the factors and x·Wᵀ from g = ∂L/∂y, after recording the
   * gradients of the variant's vectors (added to them when `accumulate`).
   */
  backward(
    batch: Batch,
    io: { g: Tensor; saved: Tensor | undefined; accumulate: boolean; keep: Keep },
  ): Tensor;
}

/** What a forward pass reads: weights by HF name, the RoPE table, adapter terms by module path. */
export interface Transformer {
  readonly config: ModelConfig;
  readonly cosSin: Tensor;
  weight(name: string): Tensor;
  adapterTerms(path: string): readonly AdapterTerm[];
}

/** Per linear module: the (dropped-out) input its adapter saw and h = x·Aᵀ. */
export interface AdapterActivations {
  input: Tensor;
  h: Tensor;
  /** What the term's variant forward returned for its backward (DoRA: x·Wᵀ + s·h·Bᵀ). */
  variant?: Tensor;
}

/** A layer's activations kept for the backward pass (names follow transformer.ts's forward). */
export interface LayerActivations {
  x: Tensor;
  h1: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  attended: Tensor;
  lse: Tensor;
  x2: Tensor;
  m: Tensor;
  gate: Tensor;
  up: Tensor;
  act: Tensor;
  adapters: Map<LinearModule, AdapterActivations>;
}

export interface LayerRun {
  at: Positions;
  /** Inference: append k and v to these caches and attend over them. */
  cache?: { k: Tensor; v: Tensor };
  /** Every tensor the layer creates is handed to `keep` (its owner releases them). */
  keep: (t: Tensor) => Tensor;
  /** Training: seeds dropout on adapter inputs (one seed per layer and module). */
  dropoutSeed?: number;
}

/**
 * y = x·Wᵀ (+ bias) and the module's adapter terms, each added by its variant from
 * h = dropout(x)·Aᵀ, recording each term's input, h and what its variant saved in `saved`
 * (training has one term per module).
 */
export function linear(
  batch: Batch,
  t: Transformer,
  x: Tensor,
  layer: number,
  module: LinearModule,
  run: LayerRun,
  saved?: Map<LinearModule, AdapterActivations>,
): Tensor {
  const path = modulePath(layer, module);
  const { keep } = run;
  const terms = t.adapterTerms(path);
  const base = keep(matmul(batch, x, t.weight(`${path}.weight`), { transB: true }));
  const hasBias =
    t.config.attentionBias && (module === 'q_proj' || module === 'k_proj' || module === 'v_proj');
  // Variants that read x·Wᵀ as it was need the output to start as a copy.
  let y = base;
  if (hasBias) y = keep(binary(batch, 'add', base, t.weight(`${path}.bias`)));
  else if (terms.some((term) => term.variant.readsBase)) y = keep(affine(batch, base, 1));
  terms.forEach((term, i) => {
    const input =
      term.dropout && run.dropoutSeed !== undefined
        ? keep(dropout(batch, x, term.dropout, dropoutSeed(run.dropoutSeed, layer, module, i)))
        : x;
    const h = keep(matmul(batch, input, term.a, { transB: true }));
    const variant = term.variant.forward(batch, term, { base, h, y, keep });
    saved?.set(module, { input, h, ...(variant ? { variant } : {}) });
  });
  return y;
}

/** The dropout seed of one adapter term in one step: the backward pass recomputes the mask. */
export function dropoutSeed(
  stepSeed: number,
  layer: number,
  module: LinearModule,
  term: number,
): number {
  const index = (layer * LINEAR_MODULES.length + LINEAR_MODULES.indexOf(module)) * 16 + term;
  return (Math.imul(stepSeed, 0x9e3779b1) + index) >>> 0;
}

/** One decoder layer: x → x + attn(norm(x)) → … + mlp(norm(…)). Returns the new residual. */
export function layerForward(
  batch: Batch,
  t: Transformer,
  layer: number,
  x: Tensor,
  run: LayerRun,
): LayerActivations & { out: Tensor } {
  const c = t.config;
  const p = `model.layers.${layer}.`;
  const { keep } = run;
  const adapters = new Map<LinearModule, AdapterActivations>();
  const lin = (input: Tensor, module: LinearModule) =>
    linear(batch, t, input, layer, module, run, adapters);

  const h1 = keep(rmsNorm(batch, x, t.weight(`${p}input_layernorm.weight`), c.rmsNormEps));
  const q = lin(h1, 'q_proj');
  const k = lin(h1, 'k_proj');
  const v = lin(h1, 'v_proj');
  rope(batch, q, t.cosSin, c.numHeads, c.headDim, run.at);
  rope(batch, k, t.cosSin, c.numKvHeads, c.headDim, run.at);
  const shape = { heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim };
  let attn;
  if (run.cache) {
    writeRows(batch, run.cache.k, k, run.at.pos0);
    writeRows(batch, run.cache.v, v, run.at.pos0);
    attn = attention(batch, q, run.cache.k, run.cache.v, shape, run.at);
  } else {
    attn = attention(batch, q, k, v, shape, run.at);
  }
  const attended = keep(attn.out);
  const lse = keep(attn.lse);
  const x2 = keep(binary(batch, 'add', x, lin(attended, 'o_proj')));
  const m = keep(rmsNorm(batch, x2, t.weight(`${p}post_attention_layernorm.weight`), c.rmsNormEps));
  const gate = lin(m, 'gate_proj');
  const up = lin(m, 'up_proj');
  const act = keep(swiglu(batch, gate, up));
  const out = keep(binary(batch, 'add', x2, lin(act, 'down_proj')));
  return { x, h1, q, k, v, attended, lse, x2, m, gate, up, act, adapters, out };
}

/** The input a layer's linear module reads, among the activations its forward pass kept. */
export function moduleInput(saved: LayerActivations, module: LinearModule): Tensor {
  switch (module) {
    case 'q_proj':
    case 'k_proj':
    case 'v_proj':
      return saved.h1;
    case 'o_proj':
      return saved.attended;
    case 'gate_proj':
    case 'up_proj':
      return saved.m;
    case 'down_proj':
      return saved.act;
  }
}

/** Where PEFT's embedding LoRA (lora_embedding_A/B) sits. */
export const EMBEDDING_PATH = 'model.embed_tokens';

/**
 * The token embeddings with embedding-LoRA terms: E[ids] + Σ scale·Aᵀ[ids]·Bᵀ, each term's `a`
 * holding Aᵀ (vocab × r) so that a row gather picks the tokens' columns of A.
 */
export function embed(batch: Batch, t: Transformer, ids: Tensor, keep: (x: Tensor) => Tensor) {
  const x = keep(gatherRows(batch, t.weight(`${EMBEDDING_PATH}.weight`), ids));
  for (const term of t.adapterTerms(EMBEDDING_PATH)) {
    const h = keep(gatherRows(batch, term.a, ids));
    matmul(batch, h, term.b, { transB: true, alpha: term.scale, beta: 1, into: x });
  }
  return x;
}

/** The output head's weight [vocab × hidden]: the embedding when tied. */
export function headWeight(t: Transformer): Tensor {
  return t.weight(t.config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
}
