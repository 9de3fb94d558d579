// A LoRA trained briefly on one invented style (style-corpus.ts), read back from the PEFT files
// a user would download: the merge report's test and the merge demo start from these.
import { TARGET_PRESETS, type InitMethod, type OrthogonalBasis } from '../adapters/config.ts';
import { readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import type { Gpu } from '../gpu/device.ts';
import type { ModelConfig } from '../model/config.ts';
import type { GpuModel } from '../model/forward.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { prepareDataset } from '../train/data.ts';
import { DEFAULT_SETTINGS } from '../train/settings.ts';
import type { StyleCorpus } from './style-corpus.ts';
import { train } from '../train/trainer.ts';

export interface StyleTraining {
  steps: number;
  rank: number;
  lr: number;
  seqLen: number;
  stories: number;
  /** PEFT's default when absent. */
  init?: InitMethod;
  /** The basis slice an orthogonal init takes. */
  basis?: OrthogonalBasis;
}

export async function trainStyleAdapter(
  gpu: Gpu,
  model: GpuModel,
  config: ModelConfig,
  tokenizer: TextTokenizer,
  style: StyleCorpus,
  t: StyleTraining,
): Promise<PeftAdapter> {
  const options = { seqLen: t.seqLen, validationFraction: 0, seed: 0 };
  const result = await train({
    gpu,
    model,
    baseModel: 'stories260K',
    data: prepareDataset(style.stories(t.stories, 1), `${style.name}.txt`, tokenizer, options),
    config: {
      lora: {
        rank: t.rank,
        alpha: 2 * t.rank,
        rslora: false,
        targets: TARGET_PRESETS['all-linear'],
        dropout: 0,
        init: t.init ?? 'lora',
        basis: t.basis,
      },
      train: {
        ...DEFAULT_SETTINGS,
        steps: t.steps,
        lr: t.lr,
        warmupSteps: 1,
        evalEvery: 0,
        checkpointEvery: 0,
      },
    },
  });
  try {
    const { files } = await result.adapter.peftFiles('stories260K', config);
    return readPeftAdapter(files, style.name);
  } finally {
    result.adapter.dispose();
  }
}
