// The three gates a routed term can carry (model/transformer.ts TermGate), by the mode table's
// GateSource: a learned constant per expert, a router softmax(W_r·x) over the experts (top-k
// optional, with the load-balancing loss in its backward), and FlyLoRA's top-k of |h| itself.
// Each writes its own gradients (added to them: the owner zeroes them before a step).
import type { Batch } from '../gpu/dispatch.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { matmul } from '../linalg/matmul.ts';
import type { GateActivations, TermGate } from '../model/transformer.ts';
import {
  applyGates,
  balance,
  gateGradients,
  gates,
  gatesBackward,
  type ExpertBlocks,
} from './kernels.ts';

/** What every gate of a term knows: its experts' blocks of rank components, on the GPU too. */
export interface GateLayout {
  blocks: ExpertBlocks;
  layout: Tensor;
  /** Sees the gates a forward chose, [T × E] (routing pictures and token shares). */
  observe?: (batch: Batch, gateValues: Tensor) => void;
}

/** G = one learned weight per expert for every token (ScaLearn): value [1 × E]. */
export function scaleGate(l: GateLayout, value: Tensor, grad?: Tensor): TermGate {
  return {
    forward(batch, { h, keep }) {
      return {
        gated: keep(applyGates(batch, h, value, l.blocks, l.layout)),
        saved: { gates: value },
      };
    },
    backward(batch, { h, dGated, keep }) {
      if (grad)
        gateGradients(batch, dGated, h, l.blocks, l.layout, { into: grad, accumulate: true });
      return { dh: keep(applyGates(batch, dGated, value, l.blocks, l.layout)) };
    },
  };
}

/**
 * G = softmax(x·W_rᵀ) renormalised over the top k (k = 0: all), router [E × in]. The backward
 * adds the Switch-Transformer load-balancing loss α·E·Σ f_e·P_e (shaders/routing.wgsl) to what
 * reaches the scores.
 */
export function routerGate(
  l: GateLayout,
  router: Tensor,
  options: { topK: number; balance: number; grad?: Tensor },
): TermGate {
  return {
    forward(batch, { x, h, keep }) {
      const scores = keep(matmul(batch, x, router, { transB: true }));
      const chosen = gates(batch, scores, 'softmax', options.topK);
      keep(chosen.gates);
      keep(chosen.probs);
      l.observe?.(batch, chosen.gates);
      return {
        gated: keep(applyGates(batch, h, chosen.gates, l.blocks, l.layout)),
        saved: chosen,
      };
    },
    backward(batch, { x, h, dGated, saved, keep }) {
      const { probs } = saved as Required<GateActivations>;
      const dGates = keep(gateGradients(batch, dGated, h, l.blocks, l.layout));
      const aux = balance(batch, probs, options.topK, options.balance);
      keep(aux.coef);
      keep(aux.stats);
      const dScores = keep(
        gatesBackward(batch, { gates: saved.gates, probs }, dGates, aux.coef, options.topK),
      );
      if (options.grad) matmul(batch, dScores, x, { transA: true, beta: 1, into: options.grad });
      return {
        dh: keep(applyGates(batch, dGated, saved.gates, l.blocks, l.layout)),
        dx: keep(matmul(batch, dScores, router)),
      };
    },
  };
}

/** G = 1 on the top k of |h| per token, 0 elsewhere (FlyLoRA: every rank component an expert). */
export function magnitudeGate(l: GateLayout, topK: number): TermGate {
  return {
    forward(batch, { h, keep }) {
      const chosen = gates(batch, h, 'magnitude', topK);
      keep(chosen.gates);
      keep(chosen.probs);
      l.observe?.(batch, chosen.gates);
      return {
        gated: keep(applyGates(batch, h, chosen.gates, l.blocks, l.layout)),
        saved: { gates: chosen.gates },
      };
    },
    backward(batch, { dGated, saved, keep }) {
      return { dh: keep(applyGates(batch, dGated, saved.gates, l.blocks, l.layout)) };
    },
  };
}
