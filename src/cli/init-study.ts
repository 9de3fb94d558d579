import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { initStudy, studyTables } from '../studies/init-study.ts';
import { intruderStudy, intruderTables } from '../studies/intruder-study.ts';
import { ZIMMY_STYLE } from '../studies/style-corpus.ts';
import { BUILT_IN_MODEL } from './built-in.ts';
import { numberOption, parseOptions } from './args.ts';

/**
 * `lora-studio init-study [--steps N] [--lr LR] [--rank R] [--eval-every N] [--only LABEL,…]
 * [--ranks] [--sorsa-gamma G]`: trains every init and variant on both style corpora with the
 * built-in stories260K; prints markdown tables (with --ranks, also the DyLoRA and LoRA adapters
 * cut to every rank; SORSA's orthonormality error).
 * `--intruders [--full-lr LR]` instead compares a full fine-tune of every linear module with LoRA
 * on the Zimmy corpus by their intruder dimensions (src/studies/intruder-study.ts).
 */
export async function initStudyCommand(args: string[]): Promise<number> {
  const { values, flags } = parseOptions(args, {
    values: ['steps', 'lr', 'rank', 'eval-every', 'only', 'full-lr', 'sorsa-gamma'],
    flags: ['ranks', 'intruders'],
  });
  const { config, weights, tokenizer } = await loadModelFromPath(BUILT_IN_MODEL);
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const model = createGpuModel(gpu, config, weights);
  const log = (line: string) => {
    console.error(line);
  };
  try {
    if (flags.has('intruders')) {
      const study = await intruderStudy(
        gpu,
        model,
        tokenizer,
        ZIMMY_STYLE,
        {
          steps: numberOption(values, 'steps', 30),
          loraLr: numberOption(values, 'lr', 5e-3),
          fullLr: numberOption(values, 'full-lr', 1e-3),
          rank: numberOption(values, 'rank', 8),
        },
        log,
      );
      console.log(intruderTables(study));
      return 0;
    }
    const settings = {
      only: values.get('only')?.split(','),
      steps: numberOption(values, 'steps', 30),
      lr: numberOption(values, 'lr', 5e-3),
      rank: numberOption(values, 'rank', 8),
      evalEvery: numberOption(values, 'eval-every', 10),
      ranks: flags.has('ranks'),
      orthonormalWeight: values.has('sorsa-gamma')
        ? numberOption(values, 'sorsa-gamma', 0)
        : undefined,
    };
    const runs = await initStudy(gpu, model, tokenizer, settings, log);
    console.log(studyTables(runs));
    return 0;
  } finally {
    model.dispose();
    gpu.destroy();
  }
}
