// The backward pass of one decoder layer (transformer.ts's layerForward) for adapter parameters
// only: the base weights are frozen, so their gradients are never formed (docs/design.md §3).
// For y = x·Wᵀ + s·h·Bᵀ with h = drop(x)·Aᵀ and g = ∂L/∂y:
//   ∂L/∂B = s·gᵀ·h,  ∂L/∂h = s·g·B,  ∂L/∂A = (∂L/∂h)ᵀ·drop(x),  ∂L/∂x = g·W + drop(∂L/∂h·A)
// where drop reuses the forward's mask (same seed). An adapter variant may change the gradient
// that reaches the factors and W's term, recording the gradients of its own vectors on the way
// (DoRA: g∘c with c its row scales, src/adapters/variants/dora.ts).
import type { VariantVectors } from '../adapters/variants.ts';
import type { Batch } from '../gpu/dispatch.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { axpy, binary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import { modulePath, type LinearModule } from '../model/modules.ts';
import { dropout, rope } from '../model/ops.ts';
import {
  dropoutSeed,
  moduleInput,
  type AdapterTerm,
  type LayerActivations,
  type LayerRun,
  type Transformer,
} from '../model/transformer.ts';
import { attentionBackward, rmsNormBackward, swigluBackward } from './kernels.ts';

/** Gradient tensors of one module's adapter, shaped like A, B and its variant's vectors. */
export interface FactorGradients extends VariantVectors<Tensor> {
  a: Tensor;
  b: Tensor;
}

export interface BackwardRun extends LayerRun {
  /** Tokens per packed sequence. */
  seqLen: number;
  /** Adapter gradients by module path; written (or added to, with `accumulate`). */
  grads: ReadonlyMap<string, FactorGradients>;
  accumulate: boolean;
  /**
   * Sees every linear module's output gradient g and input x (the base's full-weight gradient
   * is gᵀ·x): gradient-aware inits record what they need into the same batch.
   */
  observe?: (batch: Batch, path: string, g: Tensor, x: Tensor) => void;
}

/**
 * ∂L/∂x of one linear module given g = ∂L/∂y, adding the adapter's factor gradients. With
 * `into`, ∂L/∂x is added to that tensor instead of returned fresh.
 */
function linearBackward(
  batch: Batch,
  t: Transformer,
  layer: number,
  module: LinearModule,
  saved: LayerActivations,
  g: Tensor,
  run: BackwardRun,
  into?: Tensor,
): Tensor {
  const path = modulePath(layer, module);
  const { keep } = run;
  const terms = t.adapterTerms(path);
  if (terms.length > 1) throw new Error(`${path}: training supports one adapter per module`);
  const [term] = terms as (AdapterTerm | undefined)[];
  // ∂L/∂x through W from the gradient at x·Wᵀ, which gradient-aware inits see on the way.
  const throughWeight = (gw: Tensor) => {
    run.observe?.(batch, path, gw, moduleInput(saved, module));
    const weight = t.weight(`${path}.weight`);
    return into ? matmul(batch, gw, weight, { into, beta: 1 }) : keep(matmul(batch, gw, weight));
  };
  if (!term) return throughWeight(g);
  const grads = run.grads.get(path);
  const activations = saved.adapters.get(module);
  if (!grads || !activations) throw new Error(`${path}: no gradient buffers or activations`);
  // The gradient at x·Wᵀ and at the low-rank path, as the term's variant passes it on.
  const gMerged = term.variant.backward(batch, {
    g,
    saved: activations.variant,
    accumulate: run.accumulate,
    keep,
  });
  const dx = throughWeight(gMerged);
  const beta = run.accumulate ? 1 : 0;
  matmul(batch, gMerged, activations.h, { transA: true, alpha: term.scale, beta, into: grads.b });
  const dh = keep(matmul(batch, gMerged, term.b, { alpha: term.scale }));
  matmul(batch, dh, activations.input, { transA: true, beta, into: grads.a });
  if (term.dropout && run.dropoutSeed !== undefined) {
    const seed = dropoutSeed(run.dropoutSeed, layer, module, 0);
    axpy(batch, 1, keep(dropout(batch, keep(matmul(batch, dh, term.a)), term.dropout, seed)), dx);
    return dx;
  }
  return matmul(batch, dh, term.a, { into: dx, beta: 1 });
}

/** ∂L/∂x of the layer's input, given ∂L/∂out and the forward's activations. */
export function layerBackward(
  batch: Batch,
  t: Transformer,
  layer: number,
  saved: LayerActivations,
  dOut: Tensor,
  run: BackwardRun,
): Tensor {
  const c = t.config;
  const p = `model.layers.${layer}.`;
  const { keep } = run;
  const back = (module: LinearModule, g: Tensor, into?: Tensor) =>
    linearBackward(batch, t, layer, module, saved, g, run, into);

  // MLP: out = x2 + down(silu(gate(m))·up(m)), m = norm(x2)
  const dAct = back('down_proj', dOut);
  const { dGate, dUp } = swigluBackward(batch, saved.gate, saved.up, dAct);
  keep(dGate);
  keep(dUp);
  const dm = back('gate_proj', dGate);
  back('up_proj', dUp, dm);
  const w2 = t.weight(`${p}post_attention_layernorm.weight`);
  const dx2 = keep(
    binary(batch, 'add', dOut, keep(rmsNormBackward(batch, saved.x2, w2, dm, c.rmsNormEps))),
  );

  // Attention: x2 = x + o(attn(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(x)
  const dAttended = back('o_proj', dx2);
  const shape = { heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim };
  const { dq, dk, dv } = attentionBackward(
    batch,
    { q: saved.q, k: saved.k, v: saved.v, out: saved.attended, lse: saved.lse },
    dAttended,
    shape,
    run.seqLen,
    keep,
  );
  rope(batch, dq, t.cosSin, c.numHeads, c.headDim, run.at, true);
  rope(batch, dk, t.cosSin, c.numKvHeads, c.headDim, run.at, true);
  const dh1 = back('q_proj', dq);
  back('k_proj', dk, dh1);
  back('v_proj', dv, dh1);
  const w1 = t.weight(`${p}input_layernorm.weight`);
  return keep(
    binary(batch, 'add', dx2, keep(rmsNormBackward(batch, saved.x, w1, dh1, c.rmsNormEps))),
  );
}
