// Runs for the hand-off's tests, without training: a checkpoint as `train` saves one (the
// built-in stories260K's modules for the spec, the data's identity), with zero factors. The
// hand-off reads only the checkpoint's settings, module paths and data identity.
import { createHash } from 'node:crypto';
import { adaptedModules, type LoraSpec } from '../adapters/config.ts';
import { variantEntry } from '../adapters/variants.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { builtIn } from '../testing/fixtures.ts';
import { DEFAULT_SETTINGS, type TrainSettings } from '../train/settings.ts';
import type { Checkpoint } from '../train/trainer.ts';
import type { TrainedFactors } from '../adapters/peft.ts';

let builtInConfig: ReturnType<typeof readLlama2c>['config'] | undefined;

export interface RunSpec {
  lora: LoraSpec;
  train?: Partial<TrainSettings>;
  /** The base as the checkpoint names it: a file name, or a Hub id. */
  baseModel?: string;
  data: { fileName: string; content: string };
  seqLen: number;
  validationFraction: number;
  step?: number;
}

/** A checkpoint of `spec` on the built-in model, as `lora-studio train` would save it. */
export function runCheckpoint(spec: RunSpec): Checkpoint {
  builtInConfig ??= readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin').config;
  const { vectors } = variantEntry(spec.lora.variant);
  const factors: Record<string, TrainedFactors> = {};
  for (const m of adaptedModules(builtInConfig, spec.lora)) {
    const f: TrainedFactors = {
      a: new Float32Array(m.rank * m.in),
      b: new Float32Array(m.out * m.rank),
    };
    for (const v of vectors) f[v.field] = new Float32Array(m.out).fill(1);
    factors[m.path] = f;
  }
  const train = { ...DEFAULT_SETTINGS, ...spec.train };
  return {
    version: 1,
    baseModel: spec.baseModel ?? 'stories260K.bin',
    config: { lora: spec.lora, train },
    step: spec.step ?? train.steps,
    history: [],
    factors,
    moments: [],
    tokens: 0,
    elapsedMs: 0,
    data: {
      file: spec.data.fileName,
      sha256: createHash('sha256').update(spec.data.content).digest('hex'),
      seqLen: spec.seqLen,
      validationFraction: spec.validationFraction,
    },
  };
}
