// What a training run is asked to do: the adapter's shape (LoraSpec) and the optimisation
// settings. Plain data with no engine code, so the UI can import the defaults.
import type { LoraSpec } from '../adapters/config.ts';
import type { Schedule } from './schedule.ts';

export interface TrainSettings {
  steps: number;
  /** Peak learning rate. */
  lr: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimiser step. */
  gradAccum: number;
  schedule: Schedule;
  warmupSteps: number;
  weightDecay: number;
  /** AdamW's β₁, β₂ and ε (PEFT and TRL: adam_beta1, adam_beta2, adam_epsilon). */
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  /** Global-norm clipping threshold; 0 turns clipping off. */
  maxGradNorm: number;
  /** Evaluate (validation loss, samples) every N steps; 0: only at the start and the end. */
  evalEvery: number;
  /** At most this many validation sequences per evaluation. */
  evalSequences: number;
  samplePrompts: readonly string[];
  sampleTokens: number;
  /** Save a checkpoint every N steps (and at the end); 0: only at the end. */
  checkpointEvery: number;
  seed: number;
  /** Recompute each layer's activations in the backward pass (less memory, ~⅓ more work). */
  recompute: boolean;
  /**
   * LoRA-Pro (Wang et al. 2024): replace the factor gradients by those whose low-rank update best
   * approximates the full-weight gradient (src/train/lora-pro.ts).
   */
  loraPro: boolean;
  /**
   * γ of SORSA's orthonormal regulariser γ·(‖BᵀB − I‖² + ‖A·Aᵀ − I‖²), for inits that train
   * with it (src/train/orthonormal.ts).
   */
  orthonormalWeight: number;
}

export const DEFAULT_SETTINGS: TrainSettings = {
  steps: 100,
  lr: 1e-3,
  batchSize: 4,
  gradAccum: 1,
  schedule: 'cosine',
  warmupSteps: 5,
  weightDecay: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 1,
  evalEvery: 20,
  evalSequences: 32,
  samplePrompts: [],
  sampleTokens: 48,
  checkpointEvery: 20,
  seed: 0,
  recompute: false,
  loraPro: false,
  // Measured on the built-in corpora (docs/initialisations.md): it keeps SORSA's vectors 5× nearer
  // orthonormal than no regulariser and learns as well. The authors' 4e-4 weighs their unsquared
  // norms; on these squares it barely acts.
  orthonormalWeight: 0.05,
};

/**
 * Settings as saved with a run, completed by the defaults of those added since it was saved
 * (each default is the value the trainer used before it became a setting).
 */
export function withDefaultSettings(saved: TrainSettings): TrainSettings {
  return { ...DEFAULT_SETTINGS, ...saved };
}

export interface TrainConfig {
  lora: LoraSpec;
  train: TrainSettings;
}
