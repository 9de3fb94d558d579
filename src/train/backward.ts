// The backward pass of one decoder layer (transformer.ts's layerForward) for adapter parameters
// only: the base weights are frozen, so their gradients are never formed (docs/design.md §3).
// For y = x·Wᵀ + s·h·Bᵀ with h = drop(x)·Aᵀ and g = ∂L/∂y:
//   ∂L/∂B = s·gᵀ·h,  ∂L/∂h = s·g·B,  ∂L/∂A = (∂L/∂h)ᵀ·drop(x),  ∂L/∂x = g·W + drop(∂L/∂h·A)
// where drop reuses the forward's mask (same seed). A routing gate G between A and B (s·B·(G ⊙ h))
// passes ∂L/∂h = G ⊙ ∂L/∂(G ⊙ h) on and, with a router, adds its own part of ∂L/∂x. An adapter variant may change the gradient
// that reaches the factors and W's term, recording the gradients of its own vectors on the way
// (DoRA: g∘c with c its row scales, src/adapters/variants/dora.ts).
import type { VariantVectors } from '../adapters/variants.ts';
import type { Batch } from '../gpu/dispatch.ts';
import { reshaped, type Tensor } from '../gpu/tensor.ts';
import { axpy, binary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import { modulePath, type ModuleRole, type ModuleSpec } from '../model/architecture.ts';
import { joinColumns } from '../model/columns.ts';
import { dropout, rope } from '../model/ops.ts';
import {
  attentionShape,
  dropoutSeed,
  layerWeight,
  headWeight,
  moduleInput,
  type HeadActivations,
  type AdapterTerm,
  type LayerActivations,
  type LayerRun,
  type Transformer,
} from '../model/transformer.ts';
import { moduleParts } from '../model/config.ts';
import {
  activationBackward,
  attentionBackward,
  gatedActivationBackward,
  layerNormBackward,
  rmsNormBackward,
  softcapBackward,
} from './kernels.ts';

/**
 * Gradient tensors of one module's adapter, shaped like A, B and its variant's vectors; none for
 * a factor the init freezes (FFA-LoRA's A, SVFit's A and B). `core` is the gradient of the core
 * between B and A where one trains (src/train/core.ts), which the backward does not write.
 */
export interface FactorGradients extends VariantVectors<Tensor> {
  a?: Tensor;
  b?: Tensor;
  core?: Tensor;
  gain?: Tensor;
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
  module: ModuleSpec,
  saved: LayerActivations,
  g: Tensor,
  run: BackwardRun,
  into?: Tensor,
): Tensor {
  const path = modulePath(t.config.arch, layer, module);
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
  const activations = saved.adapters.get(module.name);
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
  if (grads.b)
    matmul(batch, gMerged, activations.h, { transA: true, alpha: term.scale, beta, into: grads.b });
  let dh = keep(matmul(batch, gMerged, term.b, { alpha: term.scale }));
  // A gate between A and B (routing) turns ∂L/∂(gated h) into ∂L/∂h; a router adds to ∂L/∂x.
  const gated = term.gate && activations.gate;
  const back = gated
    ? term.gate!.backward(batch, {
        x: activations.input,
        h: gated.ungated,
        dGated: dh,
        saved: gated.saved,
        keep,
      })
    : undefined;
  if (back) {
    dh = back.dh;
    if (back.dx) axpy(batch, 1, back.dx, dx);
  }
  if (grads.a) matmul(batch, dh, activations.input, { transA: true, beta, into: grads.a });
  if (term.dropout && run.dropoutSeed !== undefined) {
    const seed = dropoutSeed(t.config.arch, run.dropoutSeed, layer, module, 0);
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
  const { arch } = c;
  const { keep } = run;
  const normBack = (x: Tensor, path: string, dy: Tensor) => {
    const w = layerWeight(t, layer, path);
    return keep(
      arch.norm.kind === 'layer'
        ? layerNormBackward(batch, x, w, dy, arch.norm.eps)
        : rmsNormBackward(batch, x, w, dy, arch.norm.eps, arch.norm.offset),
    );
  };
  /**
   * ∂L/∂(the shared input) of the modules producing `roles`, from each role's gradient: fused
   * modules take their parts' gradients side by side.
   */
  const backProject = (
    roles: readonly ModuleRole[],
    grads: Partial<Record<ModuleRole, Tensor>>,
  ) => {
    let dx: Tensor | undefined;
    for (const m of arch.modules) {
      const parts = moduleParts(c, m);
      if (!parts.some((p) => roles.includes(p.role))) continue;
      const g =
        parts.length === 1
          ? grads[m.role]!
          : keep(
              joinColumns(
                batch,
                parts.map((p) => grads[p.role]!),
              ),
            );
      dx = dx
        ? linearBackward(batch, t, layer, m, saved, g, run, dx)
        : linearBackward(batch, t, layer, m, saved, g, run);
    }
    return dx!;
  };

  // MLP: out = x2 + post(down(act(gate(m), up(m)))), m = norm(x2)
  const dDown = arch.norms.postMlp ? normBack(saved.mlpOut!, arch.norms.postMlp, dOut) : dOut;
  const dAct = backProject(['down'], { down: dDown });
  let dm: Tensor;
  if (saved.gate) {
    const { dGate, dUp } = gatedActivationBackward(
      batch,
      saved.gate,
      saved.up,
      dAct,
      arch.activation,
    );
    dm = backProject(['gate', 'up'], { gate: keep(dGate), up: keep(dUp) });
  } else {
    dm = backProject(['up'], {
      up: keep(activationBackward(batch, saved.up, dAct, arch.activation)),
    });
  }
  const dx2 = keep(binary(batch, 'add', dOut, normBack(saved.x2, arch.norms.mlp, dm)));

  // Attention: x2 = x + post(o(attn(rope(qn(q(h1))), rope(kn(k(h1))), v(h1)))), h1 = norm(x)
  const dO = arch.norms.postAttention
    ? normBack(saved.attnOut!, arch.norms.postAttention, dx2)
    : dx2;
  const dAttended = backProject(['o'], { o: dO });
  const { dq, dk, dv } = attentionBackward(
    batch,
    { q: saved.q, k: saved.k, v: saved.v, out: saved.attended, lse: saved.lse },
    dAttended,
    attentionShape(c, layer),
    run.seqLen,
    keep,
  );
  const table = arch.layers[layer].rope;
  if (table !== null) {
    const cosSin = t.ropeTables[table];
    rope(batch, dq, cosSin, c.numHeads, c.headDim, run.at, true, arch.rotaryDims);
    rope(batch, dk, cosSin, c.numKvHeads, c.headDim, run.at, true, arch.rotaryDims);
  }
  let dqRaw = dq;
  let dkRaw = dk;
  if (arch.qkNorm) {
    const rows = (y: Tensor) => reshaped(y, [y.numel / c.headDim, c.headDim]);
    // normBack keeps its result; the reshaped view shares that buffer.
    const headBack = (raw: Tensor, d: Tensor, path: string) =>
      reshaped(normBack(rows(raw), path, rows(d)), raw.shape);
    dqRaw = headBack(saved.qRaw!, dq, arch.qkNorm.q);
    dkRaw = headBack(saved.kRaw!, dk, arch.qkNorm.k);
  }
  const dh1 = backProject(['q', 'k', 'v'], { q: dqRaw, k: dkRaw, v: dv });
  return keep(binary(batch, 'add', dx2, normBack(saved.x, arch.norms.input, dh1)));
}

/**
 * ∂L/∂(the last residual) from ∂L/∂logits through soft-capping, the head and the final norm.
 * The result is not handed to `keep`: the caller owns it.
 */
export function outputHeadBackward(
  batch: Batch,
  t: Transformer,
  head: HeadActivations,
  dLogits: Tensor,
  keep: (x: Tensor) => Tensor,
): Tensor {
  const { arch } = t.config;
  const { norm: spec } = arch;
  const dRaw =
    arch.finalSoftcap === null
      ? dLogits
      : keep(softcapBackward(batch, head.raw!, dLogits, arch.finalSoftcap));
  const dNormed = keep(matmul(batch, dRaw, headWeight(t)));
  const w = t.weight(`${arch.norms.final}.weight`);
  return spec.kind === 'layer'
    ? layerNormBackward(batch, head.x, w, dNormed, spec.eps)
    : rmsNormBackward(batch, head.x, w, dNormed, spec.eps, spec.offset);
}
