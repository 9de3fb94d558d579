// The hand-off's files parse, and say exactly the run's settings under each target's own names:
// the expectations below are written out by hand from the targets' documentation (PEFT's
// LoraConfig, transformers' TrainingArguments, TRL's SFTConfig, Axolotl's and LLaMA-Factory's
// config fields), not derived from SETTINGS, so a wrong spelling in the table fails here. What a
// target cannot say must be listed in the folder's README, and nothing else.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { LoraSpec } from '../adapters/config.ts';
import { INITS, initChoice, type InitMethod } from '../adapters/inits.ts';
import { learningRate, type Schedule } from '../train/schedule.ts';
import { DEFAULT_SETTINGS, type TrainSettings } from '../train/settings.ts';
import { exportRunFiles } from './export.ts';
import { handoffTable } from './readme.ts';
import { handoffRun } from './run.ts';
import { SETTINGS, TARGETS, TARGET_NAMES, type TargetName } from './settings.ts';
import { runCheckpoint, type RunSpec } from './test-runs.ts';

type Kind = 'text' | 'completion' | 'chat';

const DATA: Record<Kind, { fileName: string; content: string }> = {
  text: {
    fileName: 'stories.txt',
    content: [
      'Once upon a time there was a little cat.',
      'The cat liked to sit in the sun.',
      'One day the cat met a dog.',
      'The dog and the cat played all day.',
      'At night they slept by the fire.',
      'The end.',
    ].join('\n\n'),
  },
  completion: {
    fileName: 'qa.jsonl',
    content: [
      { prompt: 'Q: What colour is the sky?\nA:', completion: ' Blue.' },
      { prompt: 'Q: What do cats say?\nA:', completion: ' Meow.' },
      { prompt: 'Q: How many legs has a dog?\nA:', completion: ' Four.' },
      { prompt: '', completion: 'No prompt at all.' },
      { prompt: 'Q: Is the sun hot?\nA:', completion: ' Yes.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  },
  chat: {
    fileName: 'chat.jsonl',
    content: [
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
      ],
      [
        { role: 'user', content: 'Name a colour.' },
        { role: 'assistant', content: 'Red.' },
        { role: 'user', content: 'Another?' },
        { role: 'assistant', content: 'Green.' },
      ],
      [
        { role: 'user', content: 'Count to two.' },
        { role: 'assistant', content: 'One, two.' },
      ],
    ]
      .map((messages) => JSON.stringify({ messages }))
      .join('\n'),
  },
};

const ATTENTION = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'];
const ALL_LINEAR = [...ATTENTION, 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

interface Case {
  name: string;
  kind: Kind;
  lora: LoraSpec;
  train: Partial<TrainSettings>;
  seqLen: number;
  validationFraction: number;
  baseModel?: string;
  /** What every target must load: the Hub id, or null for a local file. */
  modelId: string | null;
  /** The modules the run adapted, as PEFT's target_modules. */
  modules: string[];
  /** Validation examples the studio's split gives. */
  validation: number;
}

const lora = (over: Partial<LoraSpec>): LoraSpec => ({
  rank: 8,
  alpha: 16,
  rslora: false,
  targets: ['attention'],
  dropout: 0,
  init: 'lora',
  variant: 'lora',
  ...over,
});

const CASES: Case[] = [
  {
    name: 'text, PiSSA (fast SVD), rsLoRA, some layers, wsd, recompute',
    kind: 'text',
    lora: lora({
      rank: 4,
      alpha: 6,
      rslora: true,
      layers: [0, 2],
      dropout: 0.1,
      init: 'pissa_niter_4',
      targets: ['all-linear'],
    }),
    train: {
      steps: 50,
      lr: 2e-4,
      batchSize: 2,
      gradAccum: 4,
      schedule: 'wsd',
      warmupSteps: 3,
      weightDecay: 0.01,
      adamBeta1: 0.85,
      adamBeta2: 0.95,
      adamEpsilon: 1e-7,
      maxGradNorm: 0.5,
      evalEvery: 10,
      checkpointEvery: 0,
      seed: 7,
      recompute: true,
    },
    seqLen: 48,
    validationFraction: 0.2,
    modelId: null,
    modules: ALL_LINEAR,
    validation: 1,
  },
  {
    name: 'prompt/completion, OLoRA + DoRA, alpha not whole, cosine, LoRA-Pro, samples, no validation',
    kind: 'completion',
    lora: lora({ rank: 4, alpha: 12.5, init: 'olora', variant: 'dora', targets: ['attention'] }),
    train: {
      steps: 30,
      lr: 1e-3,
      schedule: 'cosine',
      warmupSteps: 0,
      evalEvery: 0,
      checkpointEvery: 10,
      loraPro: true,
      samplePrompts: ['Q: Why?\nA:'],
      maxGradNorm: 0,
    },
    seqLen: 64,
    validationFraction: 0,
    baseModel: 'HuggingFaceTB/SmolLM2-135M',
    modelId: 'HuggingFaceTB/SmolLM2-135M',
    modules: ATTENTION,
    validation: 0,
  },
  {
    name: 'chat, EVA, rank and alpha patterns, constant without warmup',
    kind: 'chat',
    lora: lora({
      rank: 8,
      alpha: 16,
      init: 'eva',
      targets: ['q_proj', 'v_proj'],
      rankPattern: { q_proj: 4 },
      alphaPattern: { v_proj: 24 },
      dropout: 0.05,
    }),
    train: { steps: 20, schedule: 'constant', warmupSteps: 0, evalEvery: 5, seed: 3 },
    seqLen: 32,
    validationFraction: 0.3,
    modelId: null,
    modules: ['self_attn.q_proj', 'self_attn.v_proj'],
    validation: 1,
  },
  {
    name: 'prompt/completion, CorDA (knowledge-preserved), constant with warmup, validation',
    kind: 'completion',
    lora: lora({ rank: 2, alpha: 4, init: 'corda_kpm', targets: ['o_proj'] }),
    train: { steps: 12, schedule: 'constant', warmupSteps: 2, evalEvery: 4, checkpointEvery: 6 },
    seqLen: 16,
    validationFraction: 0.4,
    modelId: null,
    modules: ['self_attn.o_proj'],
    validation: 2,
  },
];

// ─── What each target must say, written out per setting ──────────────────────────────────────

type Expected = { set: Record<string, unknown>; lost?: boolean };
type PerTarget = Record<TargetName, Expected>;

const same = (set: (prefix: string) => Record<string, unknown>): PerTarget => ({
  trl: { set: set('training.') },
  axolotl: { set: set('') },
  llamafactory: { set: set('') },
});
const lostEverywhere = (lost: boolean): PerTarget => ({
  trl: { set: {}, lost },
  axolotl: { set: {}, lost },
  llamafactory: { set: {}, lost },
});

const AXOLOTL_TYPE: Record<Kind, Record<string, unknown>> = {
  text: { type: 'completion', field: 'text' },
  completion: {
    type: {
      field_instruction: 'prompt',
      field_output: 'completion',
      format: '{instruction}',
      no_input_format: '{instruction}',
    },
  },
  chat: {
    type: 'chat_template',
    chat_template: 'tokenizer_default',
    field_messages: 'messages',
    roles_to_train: ['assistant'],
    train_on_eos: 'turn',
  },
};
const axolotlData = (kind: Kind, path: string) => [
  { path, ds_type: 'json', split: 'train', ...AXOLOTL_TYPE[kind] },
];

const LLAMAFACTORY_INFO: Record<Kind, Record<string, unknown>> = {
  text: { columns: { prompt: 'text' } },
  completion: { columns: { prompt: 'prompt', response: 'completion' } },
  chat: {
    formatting: 'sharegpt',
    columns: { messages: 'messages' },
    tags: {
      role_tag: 'role',
      content_tag: 'content',
      user_tag: 'user',
      assistant_tag: 'assistant',
      system_tag: 'system',
    },
  },
};

/** PEFT's init_lora_weights (and sub-config) per init; Axolotl's peft_init_lora_weights; LLaMA-Factory's pissa_iter. */
const INIT_SPELLINGS: Record<
  string,
  {
    peft: Record<string, unknown> | null;
    batches: number;
    mutates: boolean;
    /** Axolotl's value; 'default' where it writes none (PEFT's default init), null where lost. */
    axolotl: string | null;
    pissaIter: number | null;
  }
> = {
  lora: {
    peft: { init_lora_weights: true },
    batches: 0,
    mutates: false,
    axolotl: 'default',
    pissaIter: null,
  },
  gaussian: {
    peft: { init_lora_weights: 'gaussian' },
    batches: 0,
    mutates: false,
    axolotl: 'gaussian',
    pissaIter: null,
  },
  // Frozen factors have no PEFT spelling: these start from PEFT's default init, said lost.
  ffa: { peft: null, batches: 0, mutates: false, axolotl: null, pissaIter: null },
  orthogonal: { peft: null, batches: 0, mutates: false, axolotl: null, pissaIter: null },
  svfit: { peft: null, batches: 0, mutates: false, axolotl: null, pissaIter: null },
  s2ft: { peft: null, batches: 0, mutates: false, axolotl: null, pissaIter: null },
  lora_sb: { peft: null, batches: 0, mutates: false, axolotl: null, pissaIter: null },
  sorsa: { peft: null, batches: 0, mutates: true, axolotl: null, pissaIter: null },
  loldu: { peft: null, batches: 0, mutates: true, axolotl: null, pissaIter: null },
  pissa: {
    peft: { init_lora_weights: 'pissa' },
    batches: 0,
    mutates: true,
    axolotl: 'pissa',
    pissaIter: -1,
  },
  pissa_niter_4: {
    peft: { init_lora_weights: 'pissa_niter_4' },
    batches: 0,
    mutates: true,
    axolotl: 'pissa_niter_4',
    pissaIter: 4,
  },
  pissa_niter_16: {
    peft: { init_lora_weights: 'pissa_niter_16' },
    batches: 0,
    mutates: true,
    axolotl: 'pissa_niter_16',
    pissaIter: 16,
  },
  milora: { peft: null, batches: 0, mutates: true, axolotl: null, pissaIter: null },
  olora: {
    peft: { init_lora_weights: 'olora' },
    batches: 0,
    mutates: true,
    axolotl: 'olora',
    pissaIter: null,
  },
  eva: {
    peft: { init_lora_weights: 'eva', eva_config: { rho: 2, tau: 0.99, use_label_mask: false } },
    batches: 8,
    mutates: false,
    axolotl: null,
    pissaIter: null,
  },
  corda_ipm: {
    peft: { init_lora_weights: 'corda', corda_config: { corda_method: 'ipm' } },
    batches: 8,
    mutates: true,
    axolotl: null,
    pissaIter: null,
  },
  corda_kpm: {
    peft: { init_lora_weights: 'corda', corda_config: { corda_method: 'kpm' } },
    batches: 8,
    mutates: true,
    axolotl: null,
    pissaIter: null,
  },
  lora_ga: {
    peft: {
      init_lora_weights: 'lora_ga',
      lora_ga_config: { direction: 'ArB2r', scale: 'stable', stable_gamma: 16 },
    },
    batches: 8,
    mutates: true,
    axolotl: null,
    pissaIter: null,
  },
};

const prefixed = (prefix: string, values: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [prefix + k, v]));

/** transformers' lr_scheduler_type and kwargs for a studio schedule. */
function hfSchedule(t: TrainSettings): Record<string, unknown> {
  if (t.schedule === 'cosine') return { type: 'cosine' };
  if (t.schedule === 'constant')
    return { type: t.warmupSteps > 0 ? 'constant_with_warmup' : 'constant' };
  // schedule.ts: wsd decays over the last max(1, round(0.2·steps)) steps.
  const decay = Math.max(1, Math.round(0.2 * t.steps));
  return {
    type: 'warmup_stable_decay',
    kwargs: { num_decay_steps: decay, decay_type: 'linear', min_lr_ratio: 0 },
  };
}

function expected(c: Case): Record<string, PerTarget> {
  const t: TrainSettings = { ...DEFAULT_SETTINGS, ...c.train };
  const l = c.lora;
  const v = c.validation > 0;
  const placeholder = c.modelId ?? `/path/to/${c.baseModel ?? 'stories260K.bin'}`;
  const init = INIT_SPELLINGS[l.init];
  const wholeAlpha = Number.isInteger(l.alpha);
  const patterns = l.rankPattern !== undefined || l.alphaPattern !== undefined;
  const evalEvery = t.evalEvery || t.steps;
  const schedule = hfSchedule(t);
  const scheduleSet = (typeKey: string, kwargsKey: string) => ({
    [typeKey]: schedule.type,
    ...(schedule.kwargs ? { [kwargsKey]: schedule.kwargs } : {}),
  });
  const saves = (p: string) =>
    t.checkpointEvery > 0
      ? { [`${p}save_strategy`]: 'steps', [`${p}save_steps`]: t.checkpointEvery }
      : { [`${p}save_strategy`]: 'no' };
  return {
    'Base model': {
      trl: { set: { model: c.modelId } },
      axolotl: { set: { base_model: placeholder } },
      llamafactory: { set: { model_name_or_path: placeholder } },
    },
    'Training data and loss mask': {
      trl: {
        set: {
          'data.train': 'data/train.jsonl',
          ...(c.kind === 'completion' ? { 'sft.completion_only_loss': true } : {}),
          ...(c.kind === 'chat' ? { 'sft.assistant_only_loss': true } : {}),
        },
      },
      axolotl: {
        set: { datasets: axolotlData(c.kind, 'data/train.jsonl'), train_on_inputs: false },
      },
      llamafactory: {
        set: {
          stage: c.kind === 'text' ? 'pt' : 'sft',
          dataset: 'studio_train',
          dataset_dir: 'data',
          ...(c.kind === 'chat' ? {} : { template: 'empty' }),
          train_on_prompt: false,
          'dataset_info.studio_train': { file_name: 'train.jsonl', ...LLAMAFACTORY_INFO[c.kind] },
        },
      },
    },
    'Validation split': {
      trl: { set: { 'data.validation': v ? 'data/validation.jsonl' : null } },
      axolotl: { set: v ? { test_datasets: axolotlData(c.kind, 'data/validation.jsonl') } : {} },
      llamafactory: {
        set: v
          ? {
              eval_dataset: 'studio_validation',
              'dataset_info.studio_validation': {
                file_name: 'validation.jsonl',
                ...LLAMAFACTORY_INFO[c.kind],
              },
            }
          : {},
      },
    },
    'Sequence length': {
      trl: { set: { 'sft.max_length': c.seqLen } },
      axolotl: { set: { sequence_len: c.seqLen } },
      llamafactory: { set: { cutoff_len: c.seqLen } },
    },
    Packing: {
      trl: { set: { 'sft.packing': true, 'sft.packing_strategy': 'wrapped' } },
      axolotl: { set: { sample_packing: true } },
      llamafactory: { set: { packing: true, neat_packing: false } },
    },
    Rank: {
      trl: { set: { 'lora.r': l.rank } },
      axolotl: { set: { lora_r: l.rank } },
      llamafactory: { set: { lora_rank: l.rank } },
    },
    Alpha: {
      trl: { set: { 'lora.lora_alpha': l.alpha } },
      axolotl: { set: { lora_alpha: Math.round(l.alpha) }, lost: !wholeAlpha },
      llamafactory: { set: { lora_alpha: Math.round(l.alpha) }, lost: !wholeAlpha },
    },
    'rsLoRA scaling': {
      trl: { set: { 'lora.use_rslora': l.rslora } },
      axolotl: { set: { peft_use_rslora: l.rslora } },
      llamafactory: { set: { use_rslora: l.rslora } },
    },
    'Target modules': {
      trl: { set: { 'lora.target_modules': c.modules } },
      axolotl: { set: { lora_target_modules: c.modules } },
      llamafactory: { set: { lora_target: c.modules.join(',') } },
    },
    Layers: {
      trl: { set: l.layers ? { 'lora.layers_to_transform': l.layers } : {} },
      axolotl: { set: l.layers ? { peft_layers_to_transform: l.layers } : {} },
      llamafactory: { set: {}, lost: l.layers !== undefined },
    },
    'Rank and alpha patterns': {
      trl: {
        set: patterns
          ? { 'lora.rank_pattern': l.rankPattern ?? {}, 'lora.alpha_pattern': l.alphaPattern ?? {} }
          : {},
      },
      axolotl: {
        set: patterns
          ? { lora_rank_pattern: l.rankPattern ?? {}, lora_alpha_pattern: l.alphaPattern ?? {} }
          : {},
      },
      llamafactory: { set: {}, lost: patterns },
    },
    Dropout: {
      trl: { set: { 'lora.lora_dropout': l.dropout } },
      axolotl: { set: { lora_dropout: l.dropout } },
      llamafactory: { set: { lora_dropout: l.dropout } },
    },
    Initialisation: {
      trl: {
        set: {
          ...prefixed('lora.', init.peft ?? { init_lora_weights: true }),
          'init.data_batches': init.batches,
        },
        lost: init.peft === null,
      },
      axolotl: {
        set:
          init.axolotl === null || init.axolotl === 'default'
            ? {}
            : { peft_init_lora_weights: init.axolotl },
        lost: init.axolotl === null,
      },
      llamafactory: {
        set: init.pissaIter === null ? {} : { pissa_init: true, pissa_iter: init.pissaIter },
        lost: init.pissaIter === null && l.init !== 'lora',
      },
    },
    'Adapter for the original base': {
      trl: { set: { 'init.convert_to_lora': init.mutates && init.peft !== null } },
      axolotl: {
        set: {},
        lost: init.mutates && init.axolotl !== null && init.axolotl !== 'default',
      },
      llamafactory: { set: init.pissaIter === null ? {} : { pissa_convert: true } },
    },
    Variant: {
      trl: { set: { 'lora.use_dora': l.variant === 'dora' } },
      axolotl: { set: { peft_use_dora: l.variant === 'dora' } },
      llamafactory: { set: { use_dora: l.variant === 'dora' } },
    },
    Steps: same((p) => ({ [`${p}max_steps`]: t.steps })),
    'Learning rate': same((p) => ({ [`${p}learning_rate`]: t.lr })),
    Schedule: {
      trl: { set: scheduleSet('training.lr_scheduler_type', 'training.lr_scheduler_kwargs') },
      axolotl: { set: scheduleSet('lr_scheduler', 'lr_scheduler_kwargs') },
      llamafactory: { set: scheduleSet('lr_scheduler_type', 'lr_scheduler_kwargs') },
    },
    'Warmup steps': same((p) => ({ [`${p}warmup_steps`]: t.warmupSteps })),
    'Batch size': {
      trl: { set: { 'training.per_device_train_batch_size': t.batchSize } },
      axolotl: { set: { micro_batch_size: t.batchSize } },
      llamafactory: { set: { per_device_train_batch_size: t.batchSize } },
    },
    'Gradient accumulation': same((p) => ({ [`${p}gradient_accumulation_steps`]: t.gradAccum })),
    Optimiser: {
      trl: { set: { 'training.optim': 'adamw_torch' } },
      axolotl: { set: { optimizer: 'adamw_torch' } },
      llamafactory: { set: { optim: 'adamw_torch' } },
    },
    'Weight decay': same((p) => ({ [`${p}weight_decay`]: t.weightDecay })),
    'AdamW β₁': same((p) => ({ [`${p}adam_beta1`]: t.adamBeta1 })),
    'AdamW β₂': same((p) => ({ [`${p}adam_beta2`]: t.adamBeta2 })),
    'AdamW ε': same((p) => ({ [`${p}adam_epsilon`]: t.adamEpsilon })),
    'Gradient clipping': same((p) => ({ [`${p}max_grad_norm`]: t.maxGradNorm })),
    Evaluation: {
      trl: {
        set: v
          ? {
              'training.eval_strategy': 'steps',
              'training.eval_steps': evalEvery,
              'training.eval_on_start': true,
            }
          : { 'training.eval_strategy': 'no' },
      },
      axolotl: { set: v ? { eval_steps: evalEvery } : {}, lost: v },
      llamafactory: {
        set: v ? { eval_strategy: 'steps', eval_steps: evalEvery, eval_on_start: true } : {},
      },
    },
    'Validation sequences per evaluation': lostEverywhere(v),
    'Samples while training': lostEverywhere(t.samplePrompts.length > 0),
    Checkpoints: {
      trl: { set: saves('training.') },
      axolotl: { set: saves('') },
      llamafactory: { set: saves('') },
    },
    Seed: same((p) => ({ [`${p}seed`]: t.seed })),
    'Recompute activations': {
      trl: {
        set: t.recompute
          ? {
              'training.gradient_checkpointing': true,
              'training.gradient_checkpointing_kwargs': { use_reentrant: false },
            }
          : { 'training.gradient_checkpointing': false },
      },
      axolotl: { set: { gradient_checkpointing: t.recompute } },
      llamafactory: { set: { disable_gradient_checkpointing: !t.recompute } },
    },
    'LoRA-Pro': lostEverywhere(t.loraPro),
    DyLoRA: lostEverywhere(l.dylora === true),
  };
}

/** What each target's files hold besides the run's settings. */
const FIXED: Record<TargetName, Record<string, unknown>> = {
  trl: { 'lora.task_type': 'CAUSAL_LM', 'lora.bias': 'none' },
  axolotl: { adapter: 'lora', output_dir: './output' },
  llamafactory: { do_train: true, finetuning_type: 'lora', output_dir: 'output' },
};

// ─── Reading the exported files back ─────────────────────────────────────────────────────────

const text = (files: Map<string, Uint8Array>, name: string): string => {
  const bytes = files.get(name);
  if (!bytes) throw new Error(`no ${name} among ${[...files.keys()].join(', ')}`);
  return new TextDecoder().decode(bytes);
};

/** The target's settings as one object: run_config.json, or the YAML (LLaMA-Factory's with dataset_info). */
function parsedSettings(files: Map<string, Uint8Array>, target: TargetName) {
  if (target === 'trl')
    return JSON.parse(text(files, 'run_config.json')) as Record<string, unknown>;
  const yaml = parse(text(files, TARGETS[target].config)) as Record<string, unknown>;
  if (target === 'axolotl') return yaml;
  return { ...yaml, dataset_info: JSON.parse(text(files, 'data/dataset_info.json')) as unknown };
}

/** The value at a dotted path; `missing` where a part is absent. */
const MISSING = Symbol('missing');
function at(object: unknown, path: string): unknown {
  let node = object;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null || !(part in node)) return MISSING;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** The object's keys two levels deep for run_config.json (its sections), one level for YAML. */
function leafKeys(settings: Record<string, unknown>, target: TargetName): string[] {
  const nested = target === 'trl' ? ['data', 'sft', 'init', 'training', 'lora'] : ['dataset_info'];
  return Object.entries(settings).flatMap(([k, v]) =>
    nested.includes(k) ? Object.keys(v as object).map((inner) => `${k}.${inner}`) : [k],
  );
}

/** The README's bullets under a heading: the settings it names. */
function bulletsUnder(readme: string, heading: string): string[] {
  const lines = readme.split('\n');
  const start = lines.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    const bullet = /^- ([^:]+): /.exec(line);
    if (bullet) names.push(bullet[1]);
  }
  return names;
}

function exportCase(c: Case, target: TargetName) {
  const spec: RunSpec = {
    lora: c.lora,
    train: c.train,
    baseModel: c.baseModel,
    data: DATA[c.kind],
    seqLen: c.seqLen,
    validationFraction: c.validationFraction,
  };
  return exportRunFiles(handoffRun(runCheckpoint(spec), DATA[c.kind]), target);
}

// ─── The tests ───────────────────────────────────────────────────────────────────────────────

describe('export-run files', () => {
  it('has an expectation for every setting of the hand-off table', () => {
    expect(Object.keys(expected(CASES[0])).sort()).toEqual(SETTINGS.map((s) => s.name).sort());
  });

  describe.each(TARGET_NAMES)('--to %s', (target) => {
    it.each(CASES)('$name: exactly the run’s settings, the lost ones in README.md', (c) => {
      const files = exportCase(c, target);
      const settings = parsedSettings(files, target);
      const want = expected(c);
      const wantSet: Record<string, unknown> = { ...FIXED[target] };
      const wantLost: string[] = [];
      for (const [name, perTarget] of Object.entries(want)) {
        Object.assign(wantSet, perTarget[target].set);
        if (perTarget[target].lost) wantLost.push(name);
      }
      for (const [path, value] of Object.entries(wantSet))
        expect(at(settings, path), path).toEqual(value);
      // Exactly: no key the run does not explain.
      const wantKeys = Object.keys(wantSet).map((p) =>
        p
          .split('.')
          .slice(0, target === 'trl' || p.startsWith('dataset_info.') ? 2 : 1)
          .join('.'),
      );
      expect(leafKeys(settings, target).sort()).toEqual([...new Set(wantKeys)].sort());

      const readme = text(files, 'README.md');
      const label = TARGETS[target].label;
      expect(bulletsUnder(readme, `## What ${label} cannot express`).sort()).toEqual(
        wantLost.sort(),
      );
      if (wantLost.length === 0)
        expect(readme).toContain('Nothing: every setting of this run is expressed.');
    });
  });

  it.each(CASES)('$name: the data as the studio split it, in its JSONL layout', (c) => {
    const files = exportCase(c, 'trl');
    const lines = (name: string) =>
      files.has(name)
        ? text(files, name)
            .trimEnd()
            .split('\n')
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [];
    const train = lines('data/train.jsonl');
    const validation = lines('data/validation.jsonl');
    expect(validation).toHaveLength(c.validation);
    const keys = { text: ['text'], completion: ['prompt', 'completion'], chat: ['messages'] }[
      c.kind
    ];
    for (const record of [...train, ...validation]) expect(Object.keys(record)).toEqual(keys);
    const all = DATA[c.kind].content.split(c.kind === 'text' ? '\n\n' : '\n');
    expect(train.length + validation.length).toBe(all.length);
  });

  it('starts each init with its own name in each target', () => {
    const names: InitMethod[] = INITS.map((e) => initChoice(e));
    expect(Object.keys(INIT_SPELLINGS)).toEqual(expect.arrayContaining(names));
    for (const init of [...names, 'pissa_niter_16' as const]) {
      const c: Case = {
        ...CASES[2],
        name: init,
        // S²FT trains the attention output and down projections only.
        lora: lora({
          init,
          targets: init === 's2ft' ? ['o_proj', 'down_proj'] : ['q_proj', 'v_proj'],
        }),
      };
      const want = expected(c);
      for (const target of TARGET_NAMES) {
        const files = exportCase(c, target);
        const settings = parsedSettings(files, target);
        for (const name of ['Initialisation', 'Adapter for the original base']) {
          const { set, lost } = want[name][target];
          for (const [path, value] of Object.entries(set))
            expect(at(settings, path), `${init} ${target} ${path}`).toEqual(value);
          const lostNames = bulletsUnder(
            text(files, 'README.md'),
            `## What ${TARGETS[target].label} cannot express`,
          );
          expect(lostNames.includes(name), `${init} ${target}: ${name} lost`).toBe(lost === true);
        }
        // No other init key slips in (a sub-config of another init, PiSSA flags for LoRA-GA).
        const peftKeys = Object.keys(INIT_SPELLINGS[init].peft ?? { init_lora_weights: true });
        if (target === 'trl')
          for (const key of ['eva_config', 'corda_config', 'lora_ga_config'])
            if (!peftKeys.includes(key))
              expect(at(settings, `lora.${key}`), `${init} ${key}`).toBe(MISSING);
        if (INIT_SPELLINGS[init].pissaIter === null)
          for (const key of ['pissa_init', 'pissa_iter', 'pissa_convert'])
            expect(at(settings, key), `${init} ${key}`).toBe(MISSING);
      }
    }
  });

  it('gives transformers the studio’s learning rate after warmup, for every schedule', () => {
    // transformers' schedules (optimization.py), as lambdas of the step after warmup.
    const hf = (type: string, kwargs: Record<string, number>, s: number, t: TrainSettings) => {
      const w = t.warmupSteps;
      if (type === 'constant' || type === 'constant_with_warmup') return 1;
      if (type === 'cosine') {
        const progress = (s - w) / Math.max(1, t.steps - w);
        return 0.5 * (1 + Math.cos(Math.PI * progress));
      }
      const decay = kwargs.num_decay_steps;
      const stable = t.steps - w - decay;
      if (s < w + stable) return 1;
      const progress = (s - w - stable) / decay;
      return kwargs.min_lr_ratio + (1 - kwargs.min_lr_ratio) * (1 - progress);
    };
    for (const schedule of ['constant', 'cosine', 'wsd'] as Schedule[]) {
      for (const [steps, warmupSteps] of [
        [50, 3],
        [7, 0],
        [100, 10],
      ]) {
        const t: TrainSettings = { ...DEFAULT_SETTINGS, schedule, steps, warmupSteps, lr: 1 };
        const c: Case = { ...CASES[0], train: t };
        const config = parsedSettings(exportCase(c, 'trl'), 'trl') as {
          training: { lr_scheduler_type: string; lr_scheduler_kwargs?: Record<string, number> };
        };
        for (let s = warmupSteps; s < steps; s++)
          expect(
            hf(config.training.lr_scheduler_type, config.training.lr_scheduler_kwargs ?? {}, s, t),
            `${schedule} ${steps}/${warmupSteps} step ${s}`,
          ).toBeCloseTo(learningRate(s, { schedule, lr: 1, warmupSteps, totalSteps: steps }), 12);
      }
    }
  });

  it('writes floats that YAML 1.1 (PyYAML) reads as numbers', () => {
    const c: Case = { ...CASES[0], train: { ...CASES[0].train, adamEpsilon: 1e-8, lr: 3e-7 } };
    for (const target of ['axolotl', 'llamafactory'] as const) {
      const yaml = text(exportCase(c, target), TARGETS[target].config);
      expect(yaml).toMatch(/^adam_epsilon: 1\.0e-8$/m);
      expect(yaml).toMatch(/^learning_rate: 3\.0e-7$/m);
    }
  });
});

describe('docs/sharing.md', () => {
  const path = fileURLToPath(new URL('../../docs/sharing.md', import.meta.url));
  const doc = readFileSync(path, 'utf8');

  // Prettier aligns the doc's tables (npm run lint checks it): the table is compared as Prettier
  // writes handoffTable()'s output with the repository's settings.
  it('holds the hand-off table exactly as handoffTable() writes it', async () => {
    const options = await resolveConfig(path);
    const table = (await format(handoffTable(), { ...options, parser: 'markdown' })).trimEnd();
    const at = doc.indexOf(table);
    expect(at, 'the table, as handoffTable() writes it now').toBeGreaterThanOrEqual(0);
    expect(doc.slice(at + table.length), 'no row after it').not.toMatch(/^\n\|/);
    expect(doc.slice(0, at), 'no row before it').not.toMatch(/\|\n$/);
  });

  it('names every target of export-run', () => {
    for (const target of TARGET_NAMES) expect(doc).toContain(`--to ${target}`);
  });
});
