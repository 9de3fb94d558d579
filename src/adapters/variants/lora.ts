// Plain LoRA's engine: the term adds scale·(x·Aᵀ)·Bᵀ to the output, trains nothing beside A and
// B, and composes as W + w·s·B·A (docs/design.md §3).
import { matmul } from '../../linalg/matmul.ts';
import type { TermVariant } from '../../model/transformer.ts';
import type { TrainedVariant, VariantEngine } from './engine.ts';

/** y += scale·h·Bᵀ; the gradient reaches the factors and x·Wᵀ unchanged. */
export const PLAIN_TERM: TermVariant = {
  readsBase: false,
  forward(batch, term, { h, y }) {
    matmul(batch, h, term.b, { transB: true, alpha: term.scale, beta: 1, into: y });
    return undefined;
  },
  backward: (_batch, { g }) => g,
};

const PLAIN_TRAINING: TrainedVariant = {
  vectors: {},
  term: () => PLAIN_TERM,
  tensors: () => [],
};

export const LORA: VariantEngine = {
  applied: (_gpu, { module, a, b, weight }) =>
    Promise.resolve({
      term: { a, b, scale: weight * module.scale, variant: PLAIN_TERM },
      tensors: [],
    }),
  startTraining: () => Promise.resolve(PLAIN_TRAINING),
  cpuTerm: () => ({ vectors: {}, output: () => undefined }),
  composeRow(target, _base, delta, _module, _o, weight) {
    for (let i = 0; i < target.length; i++) target[i] += weight * delta[i];
  },
};
