import { create } from 'zustand';
import { DEFAULT_SETTINGS, initChoice, INITS, TARGET_PRESETS, VARIANTS } from '../worker/api.ts';
import type { InitMethod, LoraSpec, TrainConfig, VariantName } from '../worker/api.ts';

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
const {
  weightDecay,
  adamBeta1,
  adamBeta2,
  adamEpsilon,
  maxGradNorm,
  evalSequences,
  orthonormalWeight,
} = DEFAULT_SETTINGS;

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
    adamBeta1,
    adamBeta2,
    adamEpsilon,
    maxGradNorm,
    evalEvery: 20,
    evalSequences,
    checkpointEvery: 20,
    loraPro: false,
    orthonormalWeight,
  },
  seqLen: 128,
};

const QUICK: Preset = {
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
    adamBeta1,
    adamBeta2,
    adamEpsilon,
    maxGradNorm,
    evalEvery: 10,
    evalSequences,
    checkpointEvery: 10,
    loraPro: false,
    orthonormalWeight,
  },
  seqLen: 64,
};

/**
 * Quick's run from PiSSA's start. Measured with the CLI on the example dataset (40 steps, 2
 * cores, no GPU): validation loss 0.344 at 5e-3 in 54 s, against Quick's 0.327 at 1e-2; at 1e-2
 * PiSSA's principal directions overshoot (0.544 at step 20).
 */
const PISSA_QUICK: Preset = {
  ...QUICK,
  name: 'PiSSA (stories260K)',
  description:
    'Starts from the principal singular directions of each weight, at half Quick’s learning rate: learns within a minute too.',
  lora: { ...QUICK.lora, init: 'pissa_niter_4' },
  train: { ...QUICK.train, lr: 5e-3 },
};

export const PRESETS: readonly Preset[] = [QUICK, PISSA_QUICK, LORA_DEFAULT];

/** Each init the form offers, with what it does in one line: the init table's entries. */
export const INIT_CHOICES: readonly { value: InitMethod; label: string; explanation: string }[] =
  INITS.map((e) => ({ value: initChoice(e), label: e.label, explanation: e.explanation }));

/** Each adapter variant the form offers, with what it does in one line: the variant table's. */
export const VARIANT_CHOICES: readonly {
  value: VariantName;
  label: string;
  explanation: string;
}[] = VARIANTS.map((e) => ({ value: e.name, label: e.label, explanation: e.explanation }));

interface TrainSettingsStore {
  config: TrainConfig;
  setLora: (patch: Partial<LoraSpec>) => void;
  setTrain: (patch: Partial<TrainSettings>) => void;
  /** The preset's adapter and optimisation settings; the caller applies its sequence length. */
  applyPreset: (preset: Preset) => void;
  /** A run's own settings, shown while it runs or resumes and after it ended. */
  adopt: (config: TrainConfig) => void;
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
  adopt(config) {
    set({ config });
  },
}));
