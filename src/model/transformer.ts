// One decoder layer, the embeddings and the output head on the GPU, recorded into a batch: the
// computation shared by inference (over a KV cache, forward.ts) and training (over packed
// sequences, keeping the activations that src/train/backward.ts needs). What a layer computes
// comes from the model's architecture (src/model/architecture.ts): norms, q/k norms, RoPE table
// or none, window, fused projections, MLP shape. Linear modules may carry low-rank adapter terms
// applied at run time, each as its adapter variant adds it: y = x·Wᵀ (+ b) + Σ scale·(x·Aᵀ)·Bᵀ
// for plain LoRA.
import type { Batch } from '../gpu/dispatch.ts';
import { reshaped, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { affine, binary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import { modulePath, type Architecture, type ModuleRole, type ModuleSpec } from './architecture.ts';
import { sliceColumns } from './columns.ts';
import { moduleParts, type ModelConfig } from './config.ts';
import {
  activation,
  attention,
  dropout,
  gatedActivation,
  gatherRows,
  layerNorm,
  rmsNorm,
  rope,
  softcap,
  writeRows,
  type AttentionShape,
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
  /** Routing: a per-token gate on h's rank components, before B (src/routing/; no dropout). */
  gate?: TermGate;
}

/** What a gate's forward keeps for its backward: the gates, and a router's full softmax. */
export interface GateActivations {
  gates: Tensor;
  probs?: Tensor;
}

/**
 * A per-token gate on a term's rank components (routing between experts stacked into one term,
 * src/routing/): the term adds s·(G(x) ⊙ h)·Bᵀ with h = x·Aᵀ, G scaling each expert's block of
 * h's columns, from x by a router, from h itself (FlyLoRA), or a learned constant.
 */
export interface TermGate {
  /** The gated h (handed to `keep`), and what the backward reads. */
  forward(
    batch: Batch,
    io: { x: Tensor; h: Tensor; keep: Keep },
  ): { gated: Tensor; saved: GateActivations };
  /**
   * Training: ∂L/∂h from ∂L/∂(gated h), recording the gate's own gradients (added to them); a
   * router also returns its part of ∂L/∂x.
   */
  backward(
    batch: Batch,
    io: { x: Tensor; h: Tensor; dGated: Tensor; saved: GateActivations; keep: Keep },
  ): { dh: Tensor; dx?: Tensor };
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

/** What a forward pass reads: weights by HF name, RoPE tables, adapter terms by module path. */
export interface Transformer {
  readonly config: ModelConfig;
  /** One [positions × rotaryDims/2 × 2] table per entry of the architecture's `ropes`. */
  readonly ropeTables: readonly Tensor[];
  weight(name: string): Tensor;
  adapterTerms(path: string): readonly AdapterTerm[];
}

/** Per linear module: the (dropped-out) input its adapter saw and h = x·Aᵀ (gated, as B saw it). */
export interface AdapterActivations {
  input: Tensor;
  h: Tensor;
  /** A gated term's h before the gate, and what its gate kept. */
  gate?: { ungated: Tensor; saved: GateActivations };
  /** What the term's variant forward returned for its backward (DoRA: x·Wᵀ + s·h·Bᵀ). */
  variant?: Tensor;
}

/**
 * A layer's activations kept for the backward pass (names follow layerForward). Optional ones
 * exist only where the architecture has the step that makes them.
 */
export interface LayerActivations {
  /** The layer's input, and the input norm's output (q, k, v read it). */
  x: Tensor;
  h1: Tensor;
  /** q and k before their per-head norms (Qwen3, Gemma 3). */
  qRaw?: Tensor;
  kRaw?: Tensor;
  /** q and k as attention read them (normed, rotated), and v. */
  q: Tensor;
  k: Tensor;
  v: Tensor;
  attended: Tensor;
  lse: Tensor;
  /** The attention branch's output before its sandwich norm (Gemma 3). */
  attnOut?: Tensor;
  /** The residual after attention, and the MLP norm's output. */
  x2: Tensor;
  m: Tensor;
  gate?: Tensor;
  up: Tensor;
  act: Tensor;
  /** The MLP branch's output before its sandwich norm (Gemma 3). */
  mlpOut?: Tensor;
  adapters: Map<string, AdapterActivations>;
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

/** Layer l's weight `${prefix}${l}.${path}.weight` (or `.bias`). */
export function layerWeight(t: Transformer, layer: number, path: string, kind = 'weight'): Tensor {
  return t.weight(`${t.config.arch.layerPrefix}${layer}.${path}.${kind}`);
}

/** The architecture's norm of x with the weights at `prefix` (a full path). */
export function norm(batch: Batch, t: Transformer, x: Tensor, prefix: string): Tensor {
  const { norm: spec } = t.config.arch;
  const w = t.weight(`${prefix}.weight`);
  if (spec.kind === 'layer') return layerNorm(batch, x, w, t.weight(`${prefix}.bias`), spec.eps);
  return rmsNorm(batch, x, w, spec.eps, spec.offset);
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
  module: ModuleSpec,
  run: LayerRun,
  saved?: Map<string, AdapterActivations>,
): Tensor {
  const path = modulePath(t.config.arch, layer, module);
  const { keep } = run;
  const terms = t.adapterTerms(path);
  const base = keep(matmul(batch, x, t.weight(`${path}.weight`), { transB: true }));
  // Variants that read x·Wᵀ as it was need the output to start as a copy.
  let y = base;
  if (module.bias) y = keep(binary(batch, 'add', base, t.weight(`${path}.bias`)));
  else if (terms.some((term) => term.variant.readsBase)) y = keep(affine(batch, base, 1));
  terms.forEach((term, i) => {
    const input =
      term.dropout && run.dropoutSeed !== undefined
        ? keep(
            dropout(
              batch,
              x,
              term.dropout,
              dropoutSeed(t.config.arch, run.dropoutSeed, layer, module, i),
            ),
          )
        : x;
    if (term.gate && term.dropout) throw new Error(`${path}: a gated term has no dropout`);
    const ungated = keep(matmul(batch, input, term.a, { transB: true }));
    const gated = term.gate?.forward(batch, { x: input, h: ungated, keep });
    const h = gated?.gated ?? ungated;
    const variant = term.variant.forward(batch, term, { base, h, y, keep });
    saved?.set(module.name, {
      input,
      h,
      ...(variant ? { variant } : {}),
      ...(gated ? { gate: { ungated, saved: gated.saved } } : {}),
    });
  });
  return y;
}

/** The dropout seed of one adapter term in one step: the backward pass recomputes the mask. */
export function dropoutSeed(
  arch: Architecture,
  stepSeed: number,
  layer: number,
  module: ModuleSpec,
  term: number,
): number {
  const index = (layer * arch.modules.length + arch.modules.indexOf(module)) * 16 + term;
  return (Math.imul(stepSeed, 0x9e3779b1) + index) >>> 0;
}

/**
 * Runs the modules reading one input (q, k, v or a fused qkv; gate, up or a fused gate_up) and
 * returns each role's output, fused outputs split into their parts.
 */
function project(
  t: Transformer,
  modules: readonly ModuleSpec[],
  roles: readonly ModuleRole[],
  run: (m: ModuleSpec) => Tensor,
  split: (x: Tensor, col0: number, width: number) => Tensor,
): Partial<Record<ModuleRole, Tensor>> {
  const out: Partial<Record<ModuleRole, Tensor>> = {};
  for (const m of modules) {
    const parts = moduleParts(t.config, m);
    if (!parts.some((p) => roles.includes(p.role))) continue;
    const y = run(m);
    if (parts.length === 1) {
      out[m.role] = y;
      continue;
    }
    let col0 = 0;
    for (const part of parts) {
      out[part.role] = split(y, col0, part.width);
      col0 += part.width;
    }
  }
  return out;
}

/** The attention's shape and options for layer l. */
export function attentionShape(config: ModelConfig, layer: number): AttentionShape {
  const { arch } = config;
  const window = arch.layers[layer].window;
  return {
    heads: config.numHeads,
    kvHeads: config.numKvHeads,
    headDim: config.headDim,
    scale: arch.attentionScale,
    ...(window !== null && { window }),
  };
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
  const { arch } = c;
  const p = `${arch.layerPrefix}${layer}.`;
  const { keep } = run;
  const adapters = new Map<string, AdapterActivations>();
  const lin = (input: Tensor) => (m: ModuleSpec) =>
    linear(batch, t, input, layer, m, run, adapters);
  const split = (y: Tensor, col0: number, width: number) =>
    keep(sliceColumns(batch, y, col0, width));

  const h1 = keep(norm(batch, t, x, p + arch.norms.input));
  const qkv = project(t, arch.modules, ['q', 'k', 'v'], lin(h1), split);
  let q = qkv.q!;
  let k = qkv.k!;
  const v = qkv.v!;
  const saved: Partial<LayerActivations> = {};
  if (arch.qkNorm) {
    // One [headDim] weight shared by the heads: the rows of the norm are (token, head).
    const headNorm = (y: Tensor, path: string) =>
      keep(
        reshaped(
          rmsNorm(
            batch,
            reshaped(y, [y.numel / c.headDim, c.headDim]),
            layerWeight(t, layer, path),
            arch.norm.eps,
            arch.norm.offset,
          ),
          y.shape,
        ),
      );
    saved.qRaw = q;
    saved.kRaw = k;
    q = headNorm(q, arch.qkNorm.q);
    k = headNorm(k, arch.qkNorm.k);
  }
  // RoPE turns q and k in place: the backward pass turns their gradients back.
  const table = arch.layers[layer].rope;
  if (table !== null) {
    const cosSin = t.ropeTables[table];
    rope(batch, q, cosSin, c.numHeads, c.headDim, run.at, false, arch.rotaryDims);
    rope(batch, k, cosSin, c.numKvHeads, c.headDim, run.at, false, arch.rotaryDims);
  }
  const shape = attentionShape(c, layer);
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
  const o = project(t, arch.modules, ['o'], lin(attended), split).o!;
  let attnOut: Tensor | undefined;
  let branch = o;
  if (arch.norms.postAttention) {
    attnOut = o;
    branch = keep(norm(batch, t, o, p + arch.norms.postAttention));
  }
  const x2 = keep(binary(batch, 'add', x, branch));

  const m = keep(norm(batch, t, x2, p + arch.norms.mlp));
  const mlp = project(t, arch.modules, ['gate', 'up'], lin(m), split);
  const up = mlp.up!;
  const gate = mlp.gate;
  const act = keep(
    gate
      ? gatedActivation(batch, gate, up, arch.activation)
      : activation(batch, up, arch.activation),
  );
  const down = project(t, arch.modules, ['down'], lin(act), split).down!;
  let mlpOut: Tensor | undefined;
  let mlpBranch = down;
  if (arch.norms.postMlp) {
    mlpOut = down;
    mlpBranch = keep(norm(batch, t, down, p + arch.norms.postMlp));
  }
  const out = keep(binary(batch, 'add', x2, mlpBranch));
  return {
    x,
    h1,
    ...saved,
    q,
    k,
    v,
    attended,
    lse,
    ...(attnOut && { attnOut }),
    x2,
    m,
    ...(gate && { gate }),
    up,
    act,
    ...(mlpOut && { mlpOut }),
    adapters,
    out,
  };
}

/** The input a layer's linear module reads, among the activations its forward pass kept. */
export function moduleInput(saved: LayerActivations, module: ModuleSpec): Tensor {
  switch (module.role) {
    case 'q':
    case 'k':
    case 'v':
    case 'qkv':
      return saved.h1;
    case 'o':
      return saved.attended;
    case 'gate':
    case 'up':
    case 'gate_up':
      return saved.m;
    case 'down':
      return saved.act;
  }
}

/**
 * The token embeddings with embedding-LoRA terms, E[ids] + Σ scale·Aᵀ[ids]·Bᵀ (each term's `a`
 * holding Aᵀ, vocab × r, so that a row gather picks the tokens' columns of A), times the
 * architecture's embedding scale, plus learned positions where it has them.
 */
export function embed(
  batch: Batch,
  t: Transformer,
  ids: Tensor,
  keep: Keep,
  at: Positions = { pos0: 0 },
) {
  const { arch } = t.config;
  const x = keep(gatherRows(batch, t.weight(`${arch.embedding}.weight`), ids));
  for (const term of t.adapterTerms(arch.embedding)) {
    const h = keep(gatherRows(batch, term.a, ids));
    matmul(batch, h, term.b, { transB: true, alpha: term.scale, beta: 1, into: x });
  }
  const scaled = arch.embedScale === 1 ? x : keep(affine(batch, x, arch.embedScale));
  if (!arch.positions) return scaled;
  const n = ids.numel;
  const seqLen = at.seqLen ?? n;
  const positions = keep(
    uploadTensor(
      batch.gpu,
      Uint32Array.from({ length: n }, (_, i) => at.pos0 + (i % seqLen)),
      [n],
      'u32',
      'positions',
    ),
  );
  return keep(
    binary(
      batch,
      'add',
      scaled,
      keep(gatherRows(batch, t.weight(`${arch.positions}.weight`), positions)),
    ),
  );
}

/** What the output head computed, for its backward pass. */
export interface HeadActivations {
  /** The last residual, and the final norm's output. */
  x: Tensor;
  normed: Tensor;
  /** Logits before soft-capping (when the architecture caps them). */
  raw?: Tensor;
  logits: Tensor;
}

/** The final norm and the head [vocab × hidden] (the embedding when tied), then soft-capping. */
export function outputHead(batch: Batch, t: Transformer, x: Tensor, keep: Keep): HeadActivations {
  const { arch } = t.config;
  const normed = keep(norm(batch, t, x, arch.norms.final));
  const raw = keep(matmul(batch, normed, headWeight(t), { transB: true }));
  if (arch.finalSoftcap === null) return { x, normed, logits: raw };
  return { x, normed, raw, logits: keep(softcap(batch, raw, arch.finalSoftcap)) };
}

/** The output head's weight [vocab × hidden]. */
export function headWeight(t: Transformer): Tensor {
  return t.weight(`${t.config.arch.head}.weight`);
}
