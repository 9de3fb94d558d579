// `export-run --to llamafactory`: a LLaMA-Factory YAML config and the dataset_info.json that
// describes the JSONL files' columns to it, both as SETTINGS spells them.
import { modelOrPlaceholder } from './settings.ts';
import type { TargetFiles } from './target.ts';
import { pythonYaml } from './yaml.ts';

export const llamafactory: TargetFiles = {
  files(run, spelled) {
    const { dataset_info: datasetInfo, ...settings } = spelled;
    return new Map([
      [
        'llamafactory.yaml',
        pythonYaml(
          {
            model_name_or_path: modelOrPlaceholder(run),
            do_train: true,
            finetuning_type: 'lora',
            output_dir: 'output',
            ...settings,
          },
          [
            'Written by lora-studio export-run: this LoRA Studio run as a LLaMA-Factory config.',
            'README.md says where each setting comes from and what LLaMA-Factory cannot express.',
            'Run from this folder: llamafactory-cli train llamafactory.yaml',
          ],
        ),
      ],
      ['data/dataset_info.json', JSON.stringify(datasetInfo, null, 2) + '\n'],
    ]);
  },
  howToRun: (run) => [
    '```sh',
    'pip install llamafactory',
    'llamafactory-cli train llamafactory.yaml',
    '```',
    '',
    ...(run.modelId
      ? []
      : [
          `The run's base model was a local file: set \`model_name_or_path\` in llamafactory.yaml to its Hugging Face folder (it says ${modelOrPlaceholder(run)}).`,
          '',
        ]),
    "Run it from this folder: data/dataset_info.json describes the JSONL files to LLaMA-Factory. On several GPUs: `FORCE_TORCHRUN=1 llamafactory-cli train llamafactory.yaml`, and for ZeRO add `deepspeed:` with one of LLaMA-Factory's examples/deepspeed configurations. `per_device_train_batch_size` is per GPU: on N GPUs divide `gradient_accumulation_steps` by N to keep the studio's batch. The adapter lands in output/.",
  ],
};
