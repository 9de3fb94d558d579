// DoRA's engine (Liu et al. 2024; PEFT's use_dora). A DoRA module's weight is W + s·B·A with each
// output row rescaled to a trained magnitude: W' = diag(c)·(W + s·B·A), c = m / ‖W + s·B·A‖_row.
// Applied at composition weight w, the term adds w·(W' − W)·x, so adapters still add
// independently. In training (w = 1) the row norms are treated as constants (detached, as Liu et
// al. recommend and PEFT does): plain LoRA's backward then applies to g∘c in place of g (W's term
// included), and ∂L/∂m = Σ_tokens g∘z / ‖W + s·B·A‖_row with z = x·Wᵀ + s·h·Bᵀ. The norms change
// with A and B, so training recomputes them after every update, without forming W + s·B·A:
//   ‖W_o + s·(B·A)_o‖² = ‖W_o‖² + Σ_j B_oj·(2s·W·Aᵀ + s²·B·(A·Aᵀ))_oj
// where ‖W_o‖² is constant (computed once): one out × in × r product, as B·A's.
import type { Gpu } from '../../gpu/device.ts';
import { run, type Batch } from '../../gpu/dispatch.ts';
import { releaseTensor, reshaped, uploadTensor, type Tensor } from '../../gpu/tensor.ts';
import { affine, axpy, binary, unary } from '../../linalg/elementwise.ts';
import { matmul } from '../../linalg/matmul.ts';
import { reduceRows } from '../../linalg/reduce.ts';
import { transpose } from '../../linalg/transpose.ts';
import { asF32 } from '../../linalg/widen.ts';
import type { TermVariant } from '../../model/transformer.ts';
import type { VariantVectors } from '../variants.ts';
import type { CpuFactors, Keep, TrainedVariant, TrainingModule, VariantEngine } from './engine.ts';

/** A module's row scaling: c = m / ‖W + s·B·A‖ per output row, as the forward reads it. */
interface RowScaling {
  readonly rowScale: Tensor;
}

/** One DoRA module while it trains. */
interface DoraState extends RowScaling {
  /** m [out]: the trained magnitude of each output row. */
  magnitude: Tensor;
  /** ‖W_o‖² of the weight trained against (the base's, or the residual of a base-mutating init). */
  weightSquares: Tensor;
  /** ‖W + s·B·A‖ per row at the current factors, and m divided by it: what the forward uses. */
  norm: Tensor;
  rowScale: Tensor;
}

/** Runs one batch; tensors handed to `keep` are released after it. */
async function withScratch<T>(gpu: Gpu, record: (batch: Batch, keep: Keep) => T): Promise<T> {
  const scratch: Tensor[] = [];
  try {
    return await run(gpu, (batch) =>
      record(batch, (t) => {
        scratch.push(t);
        return t;
      }),
    );
  } finally {
    releaseTensor(gpu, ...scratch);
  }
}

/** ‖W_o‖² per output row (W in any float precision). */
function weightRowSquares(batch: Batch, weight: Tensor, keep: Keep): Tensor {
  const w = weight.dtype === 'f32' ? weight : keep(asF32(batch, weight));
  return reduceRows(batch, 'sum', keep(unary(batch, 'square', w)));
}

/** ‖W + s·B·A‖ per output row, given ‖W_o‖² (intermediates go to `keep`). */
function trainingRowNorms(
  batch: Batch,
  { a, b, scale, weight }: TrainingModule,
  weightSquares: Tensor,
  keep: Keep,
): Tensor {
  // 2s·W·Aᵀ, computed as (A·Wᵀ)ᵀ: matmul reads W as its B operand in any precision.
  const crossT = keep(matmul(batch, a, weight, { transB: true, alpha: 2 * scale }));
  const cross = keep(transpose(batch, crossT));
  const gram = keep(matmul(batch, a, a, { transB: true }));
  matmul(batch, b, gram, { alpha: scale * scale, beta: 1, into: cross });
  const added = keep(reduceRows(batch, 'sum', keep(binary(batch, 'mul', b, cross))));
  return unary(batch, 'sqrt', keep(binary(batch, 'add', added, weightSquares)));
}

/** c = m / ‖W + s·B·A‖ per output row of a read module, from the dense W + s·B·A. */
function appliedRowScale(
  gpu: Gpu,
  weight: Tensor,
  a: Tensor,
  b: Tensor,
  s: number,
  magnitude: Float32Array,
): Promise<Tensor> {
  return withScratch(gpu, (batch, keep) => {
    const m = keep(uploadTensor(gpu, magnitude, [magnitude.length], 'f32', 'DoRA magnitude'));
    const dense = keep(asF32(batch, weight));
    matmul(batch, b, a, { alpha: s, beta: 1, into: dense });
    const norms = keep(
      unary(batch, 'sqrt', keep(reduceRows(batch, 'sum', keep(unary(batch, 'square', dense))))),
    );
    return binary(batch, 'div', m, norms);
  });
}

/** y += w·(c∘(x·Wᵀ + s·h·Bᵀ) − x·Wᵀ); what it saves is z = x·Wᵀ + s·h·Bᵀ. */
function doraTerm(
  scaling: RowScaling,
  weight: number,
  backward: TermVariant['backward'],
): TermVariant {
  return {
    readsBase: true,
    forward(batch, term, { base, h, y, keep }) {
      const merged = keep(affine(batch, base, 1));
      matmul(batch, h, term.b, { transB: true, alpha: term.scale, beta: 1, into: merged });
      axpy(batch, weight, keep(binary(batch, 'mul', merged, scaling.rowScale)), y);
      axpy(batch, -weight, base, y);
      return merged;
    },
    backward,
  };
}

/** ∂L/∂m into `grads.magnitude`; returns g∘c, the gradient at x·Wᵀ and the low-rank path. */
function trainingBackward(
  state: DoraState,
  grads: VariantVectors<Tensor>,
): TermVariant['backward'] {
  return (batch, { g, saved, accumulate, keep }) => {
    const gradient = grads.magnitude;
    if (!saved || !gradient)
      throw new Error('training DoRA needs the merged output and a magnitude gradient');
    const perToken = keep(binary(batch, 'div', keep(binary(batch, 'mul', g, saved)), state.norm));
    // The sum over tokens as a product with ones, which can accumulate into the gradient.
    const tokens = g.shape[0];
    const ones = keep(
      uploadTensor(batch.gpu, new Float32Array(tokens).fill(1), [1, tokens], 'f32', 'ones'),
    );
    const into = reshaped(gradient, [1, gradient.numel]);
    matmul(batch, ones, perToken, { beta: accumulate ? 1 : 0, into });
    return keep(binary(batch, 'mul', g, state.rowScale));
  };
}

function trainedDora(state: DoraState, job: TrainingModule): TrainedVariant {
  return {
    vectors: { magnitude: state.magnitude },
    refresh(batch, keep) {
      // The previous ones go once the batch is submitted.
      keep(state.norm);
      keep(state.rowScale);
      state.norm = trainingRowNorms(batch, job, state.weightSquares, keep);
      state.rowScale = binary(batch, 'div', state.magnitude, state.norm);
    },
    term: (grads) => doraTerm(state, 1, trainingBackward(state, grads)),
    tensors: () => [state.magnitude, state.weightSquares, state.norm, state.rowScale],
  };
}

/** ‖W + s·B·A‖ per output row, in f64. */
export function cpuDoraNorms(
  weight: ArrayLike<number>,
  term: CpuFactors,
  inputs: number,
): Float64Array {
  const outputs = term.b.length / term.rank;
  const norms = new Float64Array(outputs);
  for (let o = 0; o < outputs; o++) {
    let sum = 0;
    for (let i = 0; i < inputs; i++) {
      let delta = 0;
      for (let j = 0; j < term.rank; j++)
        delta += term.b[o * term.rank + j] * term.a[j * inputs + i];
      sum += (weight[o * inputs + i] + term.scale * delta) ** 2;
    }
    norms[o] = Math.sqrt(sum);
  }
  return norms;
}

function requireMagnitude<T>(magnitude: T | undefined): T {
  if (magnitude === undefined) throw new Error('a DoRA module needs its magnitude vector');
  return magnitude;
}

export const DORA: VariantEngine = {
  async applied(gpu, { module, a, b, weight, baseWeight }) {
    const magnitude = requireMagnitude(module.magnitude);
    const rowScale = await appliedRowScale(gpu, baseWeight, a, b, module.scale, magnitude);
    const frozen = () => {
      throw new Error('a DoRA term applied to a model does not train');
    };
    return {
      term: { a, b, scale: module.scale, variant: doraTerm({ rowScale }, weight, frozen) },
      tensors: [rowScale],
    };
  },

  /**
   * Magnitudes start at ‖W + s·B₀·A₀‖_row (‖W‖_row for every init: base-mutating ones train
   * against W − s·B₀·A₀), so the row scales are exactly 1 and the output is unchanged.
   */
  async startTraining(gpu, job) {
    const state = await withScratch(gpu, (batch, keep) => {
      const weightSquares = weightRowSquares(batch, job.weight, keep);
      const norm = trainingRowNorms(batch, job, weightSquares, keep);
      const magnitude = affine(batch, norm, 1);
      const rowScale = binary(batch, 'div', magnitude, norm);
      return { magnitude, weightSquares, norm, rowScale };
    });
    return trainedDora(state, job);
  },

  cpuTerm(weight, factors, vectors) {
    const magnitude = requireMagnitude(vectors.magnitude);
    const norm = cpuDoraNorms(weight, factors, factors.a.length / factors.rank);
    return {
      vectors: { magnitude },
      output(z) {
        for (let o = 0; o < z.length; o++) z[o] *= magnitude[o] / norm[o];
      },
    };
  },

  composeRow(target, base, delta, module, o, weight) {
    let norm = 0;
    for (let i = 0; i < target.length; i++) norm += (base[i] + delta[i]) ** 2;
    const g = requireMagnitude(module.magnitude)[o] / Math.sqrt(norm);
    for (let i = 0; i < target.length; i++)
      target[i] += weight * (g * (base[i] + delta[i]) - base[i]);
  },
};
