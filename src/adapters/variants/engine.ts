// What an adapter variant does to the numbers of one adapted module: its term in the GPU forward
// and backward (applied from a read adapter, or trained with the vectors it adds to A and B), its
// f64 reference, and its composition into the weights on the host. The variant table
// (../variants.ts) says what each variant is; ENGINES holds one engine per entry, in
// variants/<name>.ts, and fails to compile without one.
import type { Gpu } from '../../gpu/device.ts';
import type { Batch } from '../../gpu/dispatch.ts';
import type { Tensor } from '../../gpu/tensor.ts';
import type { AdapterTerm, TermVariant } from '../../model/transformer.ts';
import type { AdapterModule } from '../peft-read.ts';
import { PLAIN_VARIANT, type VariantName, type VariantVectors } from '../variants.ts';
import { DORA } from './dora.ts';
import { LORA } from './lora.ts';

export type Keep = (t: Tensor) => Tensor;

/** A module of a read adapter, applied at run time on a model (peft-read.ts adapterTerms). */
export interface AppliedModule {
  module: AdapterModule;
  /** Its factors uploaded: A [r × in], B [out × r]. */
  a: Tensor;
  b: Tensor;
  /** The composition weight (negative subtracts the adapter). */
  weight: number;
  /** The model's frozen weight of the module, in its stored precision. */
  baseWeight: Tensor;
}

/** A module of an adapter starting to train (train/trainable.ts). */
export interface TrainingModule {
  /** PEFT's scaling s of B·A. */
  scale: number;
  /** Its factors as initialised; the optimiser updates them in place. */
  a: Tensor;
  b: Tensor;
  /**
   * The weight it trains against, for the whole run: the residual of a base-mutating init, or
   * the base's.
   */
  weight: Tensor;
}

/** A variant's own state for one module in training. */
export interface TrainedVariant {
  /** The vectors it trains beside A and B (DoRA's magnitude), optimised with them. */
  readonly vectors: VariantVectors<Tensor>;
  /**
   * Recomputes what depends on A, B and the vectors once they changed (an optimiser step, a
   * checkpoint written back); absent when nothing does.
   */
  refresh?: (batch: Batch, keep: Keep) => void;
  /** The term's variant in the training forward and backward; vectors' gradients go to `grads`. */
  term(grads: VariantVectors<Tensor>): TermVariant;
  /** The GPU tensors it holds, to release with the adapter. */
  tensors(): Tensor[];
}

/** A term of the f64 reference loss (model/cpu/reference.ts): A [r × in], B [out × r], row-major. */
export interface CpuFactors {
  a: Float64Array;
  b: Float64Array;
  rank: number;
  scale: number;
}

/** A variant's part of a reference term. */
export interface CpuTermVariant {
  /** Its vectors in f64, which gradient checks perturb in place. */
  readonly vectors: VariantVectors<Float64Array>;
  /** The module's output row from z = x·Wᵀ + scale·(B·A·x), in place (before any bias). */
  output(z: Float64Array): void;
}

export interface VariantEngine {
  /** The run-time term of a read adapter's module, and the tensors it made (caller releases). */
  applied(gpu: Gpu, job: AppliedModule): Promise<{ term: AdapterTerm; tensors: Tensor[] }>;
  /** A module's vectors at the start of training, and what its forward and backward use. */
  startTraining(gpu: Gpu, job: TrainingModule): Promise<TrainedVariant>;
  /**
   * The reference term's variant given the module's weight [out × in] and factors: what depends
   * on A and B is computed here, then held fixed (as the GPU's backward holds it).
   */
  cpuTerm(
    weight: ArrayLike<number>,
    factors: CpuFactors,
    vectors: VariantVectors<Float64Array>,
  ): CpuTermVariant;
  /**
   * Adds a read module's term at `weight` to output row o of the composed weight
   * (adapters/compose.ts), given that row of the base weight and of s·B·A (in f64).
   */
  composeRow(
    target: Float32Array,
    base: Float32Array,
    delta: Float64Array,
    module: AdapterModule,
    o: number,
    weight: number,
  ): void;
}

export const ENGINES = { lora: LORA, dora: DORA } as const satisfies Record<
  VariantName,
  VariantEngine
>;

/** The engine of a variant; plain LoRA's when none is named. */
export function variantEngine(name: VariantName = PLAIN_VARIANT): VariantEngine {
  return ENGINES[name];
}
