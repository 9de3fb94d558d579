import { create } from 'zustand';
import { DEFAULT_SETTINGS, TARGET_PRESETS } from '../worker/api.ts';
import type { InitMethod, LoraSpec, TrainConfig } from '../worker/api.ts';

export type TrainSettings = TrainConfig['train'];

/** A named starting point: the adapter's shape, the optimisation and the sequence length. */
export interface Preset {
  name: string;
  description: string;
  lora: LoraSpec;
  /** Prompts, seed and recompute are the user's: presets leave them alone. */
  train: Omit<TrainSettings, 'samplePrompts' | 'sampleTokens' | 'seed' | 'recompute'>;
  seqLen: number;
}

// Spelled out rather than spread from DEFAULT_SETTINGS, which also holds the user's own fields.
const { weightDecay, maxGradNorm, evalSequences } = DEFAULT_SETTINGS;

const LORA_DEFAULT: Preset = {
  name: 'LoRA default',
  description: 'PEFT-style LoRA on the attention projections: a safe start for a real model.',
  lora: {
    rank: 16,
    alpha: 32,
    rslora: false,
    targets: TARGET_PRESETS.attention,
    dropout: 0.05,
    init: 'lora',
  },
  train: {
    steps: 200,
    lr: 2e-4,
    batchSize: 4,
    gradAccum: 1,
    schedule: 'cosine',
    warmupSteps: 10,
    weightDecay,
    maxGradNorm,
    evalEvery: 20,
    evalSequences,
    checkpointEvery: 20,
    loraPro: false,
  },
  seqLen: 128,
};

export const PRESETS: readonly Preset[] = [
  {
    name: 'Quick (stories260K)',
    description: 'Teaches the built-in model a new style in under a minute, even without a GPU.',
    lora: {
      rank: 8,
      alpha: 16,
      rslora: false,
      targets: TARGET_PRESETS['all-linear'],
      dropout: 0,
      init: 'lora',
    },
    train: {
      steps: 40,
      lr: 1e-2,
      batchSize: 4,
      gradAccum: 1,
      schedule: 'cosine',
      warmupSteps: 2,
      weightDecay,
      maxGradNorm,
      evalEvery: 10,
      evalSequences,
      checkpointEvery: 10,
      loraPro: false,
    },
    seqLen: 64,
  },
  LORA_DEFAULT,
  {
    ...LORA_DEFAULT,
    name: 'PiSSA',
    description:
      'Starts from the principal singular directions of each weight: converges faster, so a smaller learning rate.',
    lora: { ...LORA_DEFAULT.lora, init: 'pissa_niter_4' },
    train: { ...LORA_DEFAULT.train, lr: 2e-5 },
  },
];

/** Each init the form offers, with what it does in one line. */
export const INIT_CHOICES: readonly { value: InitMethod; label: string; explanation: string }[] = [
  {
    value: 'lora',
    label: 'LoRA (PEFT default)',
    explanation: 'A random (Kaiming-uniform), B zero: training starts from the unchanged model.',
  },
  {
    value: 'gaussian',
    label: 'Gaussian',
    explanation: 'As the default, with A drawn from a Gaussian (standard deviation 1/r, as PEFT).',
  },
  {
    value: 'pissa',
    label: 'PiSSA, exact SVD',
    explanation:
      'A and B hold the top r singular directions of each weight; the frozen base keeps the rest.',
  },
  {
    value: 'pissa_niter_4',
    label: 'PiSSA, fast SVD (4 iterations)',
    explanation:
      'PiSSA from a randomized SVD with 4 power iterations: nearly the same, much faster.',
  },
  {
    value: 'milora',
    label: 'MiLoRA',
    explanation:
      'The smallest singular directions: adapts what the model uses least, keeping its knowledge.',
  },
  {
    value: 'olora',
    label: 'OLoRA',
    explanation: 'An orthonormal start from a QR decomposition of each weight.',
  },
  {
    value: 'eva',
    label: 'EVA (reads your data)',
    explanation:
      'A = the main directions of each layer’s inputs on your data, B zero; rank moves to the layers whose inputs vary most.',
  },
  {
    value: 'corda_ipm',
    label: 'CorDA, instruction-previewed (reads your data)',
    explanation:
      'Adapts the weight directions your data excites most (SVD of W·C, C its input covariance).',
  },
  {
    value: 'corda_kpm',
    label: 'CorDA, knowledge-preserved (reads your data)',
    explanation:
      'Adapts the directions your data excites least, leaving the model’s main behaviour in place.',
  },
  {
    value: 'lora_ga',
    label: 'LoRA-GA (reads your data)',
    explanation:
      'Starts from the SVD of the full-weight gradient on a few batches: the first steps move as full fine-tuning would.',
  },
];

interface TrainSettingsStore {
  config: TrainConfig;
  setLora: (patch: Partial<LoraSpec>) => void;
  setTrain: (patch: Partial<TrainSettings>) => void;
  /** The preset's adapter and optimisation settings; the caller applies its sequence length. */
  applyPreset: (preset: Preset) => void;
}

function withPreset(config: TrainConfig, preset: Preset): TrainConfig {
  return {
    lora: { ...config.lora, ...preset.lora },
    train: { ...config.train, ...preset.train },
  };
}

/** Whether the settings (and sequence length) are exactly the preset's. */
export function isPreset(config: TrainConfig, seqLen: number, preset: Preset): boolean {
  return (
    seqLen === preset.seqLen &&
    JSON.stringify(withPreset(config, preset)) === JSON.stringify(config)
  );
}

export const useTrainSettingsStore = create<TrainSettingsStore>((set, get) => ({
  config: {
    lora: {
      rank: 8,
      alpha: 16,
      rslora: false,
      targets: TARGET_PRESETS.attention,
      dropout: 0,
      init: 'lora',
    },
    train: { ...DEFAULT_SETTINGS, samplePrompts: ['Once upon a time'], sampleTokens: 40 },
  },
  setLora(patch) {
    const { config } = get();
    set({ config: { ...config, lora: { ...config.lora, ...patch } } });
  },
  setTrain(patch) {
    const { config } = get();
    set({ config: { ...config, train: { ...config.train, ...patch } } });
  },
  applyPreset(preset) {
    set({ config: withPreset(get().config, preset) });
  },
}));
