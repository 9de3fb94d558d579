// `export-run --to axolotl`: one Axolotl YAML config, its keys as SETTINGS spells them.
import { modelOrPlaceholder } from './settings.ts';
import type { TargetFiles } from './target.ts';
import { pythonYaml } from './yaml.ts';

export const axolotl: TargetFiles = {
  files: (run, spelled) =>
    new Map([
      [
        'axolotl.yaml',
        pythonYaml(
          {
            base_model: modelOrPlaceholder(run),
            adapter: 'lora',
            output_dir: './output',
            ...spelled,
          },
          [
            'Written by lora-studio export-run: this LoRA Studio run as an Axolotl config.',
            'README.md says where each setting comes from and what Axolotl cannot express.',
            'Run from this folder: axolotl train axolotl.yaml',
          ],
        ),
      ],
    ]),
  howToRun: (run) => [
    '```sh',
    'pip install axolotl',
    'axolotl train axolotl.yaml',
    '```',
    '',
    ...(run.modelId
      ? []
      : [
          `The run's base model was a local file: set \`base_model\` in axolotl.yaml to its Hugging Face folder (it says ${modelOrPlaceholder(run)}).`,
          '',
        ]),
    "Run it from this folder (the dataset paths are relative). `axolotl train` uses every visible GPU; for ZeRO add `deepspeed: deepspeed_configs/zero2.json` (from `axolotl fetch deepspeed_configs`), or see Axolotl's multi-GPU guide for FSDP. `micro_batch_size` is per GPU: on N GPUs divide `gradient_accumulation_steps` by N to keep the studio's batch. The adapter lands in output/.",
  ],
};
