// `export-run --to trl`: train.py (one script for every run) and run_config.json (the run's
// settings, spelled as SETTINGS says), with accelerate configurations for several GPUs.
import type { HandoffRun } from './run.ts';
import { TRAIN_PY } from './train-py.ts';
import type { TargetFiles } from './target.ts';
import { pythonYaml } from './yaml.ts';

/** What PEFT needs besides the run's settings: a causal LM's adapter, biases left alone. */
const LORA_BASE = { task_type: 'CAUSAL_LM', bias: 'none' };

/** accelerate's settings shared by the three multi-GPU configurations (as TRL's examples). */
const ACCELERATE_BASE = {
  compute_environment: 'LOCAL_MACHINE',
  debug: false,
  downcast_bf16: 'no',
  machine_rank: 0,
  main_training_function: 'main',
  mixed_precision: 'bf16',
  num_machines: 1,
  num_processes: 8,
  rdzv_backend: 'static',
  same_network: true,
  use_cpu: false,
};

const GPUS_NOTE =
  'num_processes: the number of GPUs (or pass --num_processes N to accelerate launch).';

/** The multi-GPU configurations, by file name under accelerate/, with when to choose each. */
export const ACCELERATE_CONFIGS: Record<string, { when: string; config: object }> = {
  'deepspeed_zero2.yaml': {
    when: 'the base model fits on one GPU: each GPU holds the whole frozen base; ZeRO-2 shards the gradients and the (small) optimiser state of the adapter',
    config: {
      ...ACCELERATE_BASE,
      distributed_type: 'DEEPSPEED',
      deepspeed_config: {
        deepspeed_multinode_launcher: 'standard',
        offload_optimizer_device: 'none',
        offload_param_device: 'none',
        zero3_init_flag: false,
        zero_stage: 2,
      },
    },
  },
  'fsdp.yaml': {
    when: 'the base model does not fit on one GPU: FSDP2 shards it. Every process still loads the whole model into CPU memory first (cpu_ram_efficient_loading off), since PEFT initialises the adapter before sharding and the inits that read the weights need all of them',
    config: {
      ...ACCELERATE_BASE,
      distributed_type: 'FSDP',
      fsdp_config: {
        fsdp_version: 2,
        fsdp_auto_wrap_policy: 'TRANSFORMER_BASED_WRAP',
        fsdp_cpu_ram_efficient_loading: false,
        fsdp_offload_params: false,
        fsdp_reshard_after_forward: true,
        fsdp_state_dict_type: 'FULL_STATE_DICT',
        fsdp_activation_checkpointing: false,
      },
    },
  },
  'deepspeed_zero3.yaml': {
    when: "as FSDP, with DeepSpeed. zero3_init_flag stays false for the same reason (true loads the base already partitioned: only LoRA's default and Gaussian inits work then)",
    config: {
      ...ACCELERATE_BASE,
      distributed_type: 'DEEPSPEED',
      deepspeed_config: {
        deepspeed_multinode_launcher: 'standard',
        offload_optimizer_device: 'none',
        offload_param_device: 'none',
        zero3_init_flag: false,
        zero3_save_16bit_model: true,
        zero_stage: 3,
      },
    },
  },
};

export const trl: TargetFiles = {
  files(_run, spelled) {
    const { lora, ...rest } = spelled as { lora: object };
    const config = { ...rest, lora: { ...LORA_BASE, ...lora } };
    const files = new Map<string, string>([
      ['train.py', TRAIN_PY],
      ['run_config.json', JSON.stringify(config, null, 2) + '\n'],
    ]);
    for (const [name, { when, config: accelerate }] of Object.entries(ACCELERATE_CONFIGS))
      files.set(
        `accelerate/${name}`,
        pythonYaml(accelerate, [
          `accelerate launch --config_file accelerate/${name} train.py`,
          `For ${when}.`,
          GPUS_NOTE,
        ]),
      );
    return files;
  },
  howToRun: (run: HandoffRun) => [
    '```sh',
    'pip install torch transformers peft trl datasets accelerate',
    `python train.py${run.modelId ? '' : ` --model /path/to/${run.baseModel}`}`,
    '```',
    '',
    "train.py is the same for every run: the settings are in run_config.json (`lora`: PEFT's LoraConfig; `training`: TRL's SFTConfig, or transformers' TrainingArguments; `sft`: SFTConfig only; `data` and `init`: read by train.py). With TRL installed it trains with TRL's SFTTrainer, which tokenizes and packs the JSONL files itself; without TRL, with `--studio-packing`, or for chat data whose template does not mark the assistant replies (`{% generation %}`), it trains with transformers' Trainer on the studio's own tokenization, loss mask and packing (the same token windows as the studio). The adapter lands in output/adapter.",
    '',
    'On several GPUs, launch it with accelerate and one of the configurations in accelerate/ (set num_processes to the number of GPUs, or pass `--num_processes N`):',
    '',
    ...Object.entries(ACCELERATE_CONFIGS).map(
      ([name, { when }]) =>
        `- \`accelerate launch --config_file accelerate/${name} train.py\`: ${when}.`,
    ),
    '',
    "Batch size is per GPU: on N GPUs divide `training.gradient_accumulation_steps` by N to keep the studio's batch.",
  ],
};
