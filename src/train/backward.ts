// The backward pass of one decoder layer (transformer.ts's layerForward) for adapter parameters
// only: the base weights are frozen, so their gradients are never formed (docs/design.md §3).
// For y = x·Wᵀ + s·h·Bᵀ with h = drop(x)·Aᵀ and g = ∂L/∂y:
//   ∂L/∂B = s·gᵀ·h,  ∂L/∂h = s·g·B,  ∂L/∂A = (∂L/∂h)ᵀ·drop(x),  ∂L/∂x = g·W + drop(∂L/∂h·A)
// where drop reuses the forward's mask (same seed). DoRA scales each output feature o of the
// merged z = x·Wᵀ + s·h·Bᵀ by c_o = m_o / ‖(W + s·B·A)_o‖ (a row norm of the weight), the norm
// treated as a constant (detached, as Liu et al. recommend and PEFT does): the rules above then
// apply to g∘c in place of g (W's term included), and ∂L/∂m = Σ_tokens g∘z / ‖W + s·B·A‖_row.
import type { Batch } from '../gpu/dispatch.ts';
import { reshaped, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { axpy, binary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import { modulePath, type LinearModule } from '../model/modules.ts';
import { dropout, rope } from '../model/ops.ts';
import {
  dropoutSeed,
  moduleInput,
  type AdapterActivations,
  type AdapterTerm,
  type LayerActivations,
  type LayerRun,
  type Transformer,
} from '../model/transformer.ts';
import { attentionBackward, rmsNormBackward, swigluBackward } from './kernels.ts';

/** Gradient tensors of one module's adapter, shaped like A and B (and DoRA's magnitude m). */
export interface FactorGradients {
  a: Tensor;
  b: Tensor;
  m?: Tensor;
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
  // The gradient at x·Wᵀ (and at the low-rank path): DoRA's row scale multiplies both.
  const gMerged = term?.dora ? keep(binary(batch, 'mul', g, term.dora.rowScale)) : g;
  run.observe?.(batch, path, gMerged, moduleInput(saved, module));
  const dx = into
    ? matmul(batch, gMerged, t.weight(`${path}.weight`), { into, beta: 1 })
    : keep(matmul(batch, gMerged, t.weight(`${path}.weight`)));
  if (!term) return dx;
  const grads = run.grads.get(path);
  const activations = saved.adapters.get(module);
  if (!grads || !activations) throw new Error(`${path}: no gradient buffers or activations`);
  const beta = run.accumulate ? 1 : 0;
  if (term.dora) magnitudeGradient(batch, path, term.dora, g, activations, grads, beta, keep);
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

/** ∂L/∂m = Σ_tokens g∘z / ‖W + s·B·A‖_row, written into (or, with beta 1, added to) grads.m. */
function magnitudeGradient(
  batch: Batch,
  path: string,
  dora: NonNullable<AdapterTerm['dora']>,
  g: Tensor,
  activations: AdapterActivations,
  grads: FactorGradients,
  beta: number,
  keep: (t: Tensor) => Tensor,
): void {
  if (dora.weight !== 1 || !dora.norm || !activations.merged || !grads.m)
    throw new Error(
      `${path}: training DoRA needs weight 1, the row norms, the merged output and a magnitude gradient`,
    );
  const perToken = keep(
    binary(batch, 'div', keep(binary(batch, 'mul', g, activations.merged)), dora.norm),
  );
  // The sum over tokens as a product with ones, which can accumulate into grads.m.
  const tokens = g.shape[0];
  const ones = keep(
    uploadTensor(batch.gpu, new Float32Array(tokens).fill(1), [1, tokens], 'f32', 'ones'),
  );
  matmul(batch, ones, perToken, { beta, into: reshaped(grads.m, [1, grads.m.numel]) });
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
