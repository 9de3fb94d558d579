// The hand-off table: every setting of a studio run, and how TRL/PEFT, Axolotl and LLaMA-Factory
// spell it — or that they cannot, and why. The three targets' configs, the README written beside
// them, docs/sharing.md's table and the tests all come from SETTINGS. A target's keys are dotted
// paths into what it reads: `lora.r` is run_config.json's {"lora": {"r": …}} (train.py passes
// `lora` to PEFT's LoraConfig, `training` to TRL's SFTConfig or transformers' TrainingArguments,
// `sft` to SFTConfig alone); `datasets` is a top-level key of axolotl.yaml; LLaMA-Factory's
// `dataset_info.*` lands in data/dataset_info.json, every other key in llamafactory.yaml.
import { INITS, initEntry, type InitMethod } from '../adapters/inits.ts';
import { EVA_RHO } from '../adapters/inits/components.ts';
import { peftFlags, VARIANTS, variantEntry } from '../adapters/variants.ts';
import { learningRate, type Schedule } from '../train/schedule.ts';
import { EVA_TAU } from '../train/statistics.ts';
import type { TrainSettings } from '../train/settings.ts';
import {
  EXAMPLE_KINDS,
  TRAIN_FILE,
  VALIDATION_FILE,
  type ExampleKind,
  type SplitKind,
} from './dataset.ts';
import { hasValidation, type HandoffRun } from './run.ts';
import type { TargetName } from './targets.ts';

export { TARGET_NAMES, TARGETS, type TargetName } from './targets.ts';

/** What a target writes for one setting of a run. */
export interface Spelled {
  set: Readonly<Record<string, unknown>>;
  /** What of the run's value the target cannot say (what it does instead): the README lists it. */
  lost?: string;
  /** How the target's meaning differs from the studio's though it says the same value. */
  differs?: string;
}

export interface Spelling {
  /** Every key the setting may write. */
  keys: readonly string[];
  /** What the target can never say of this setting, in a few words (the docs' table). */
  limit?: string;
  spell(run: HandoffRun): Spelled;
}

export interface HandoffSetting {
  name: string;
  /** How the studio spells it: the train command's option, or what the studio does. */
  studio: string;
  /** The run's value, as the README shows it. */
  value(run: HandoffRun): string;
  targets: Record<TargetName, Spelling>;
}

// ─── Helpers ─────────────────────────────────────────────────────────────────────────────────

const train = (run: HandoffRun): TrainSettings => run.config.train;
const lora = (run: HandoffRun) => run.config.lora;

/** One key holding the value. */
function key(name: string, value: (run: HandoffRun) => unknown, differs?: string): Spelling {
  return { keys: [name], spell: (run) => ({ set: { [name]: value(run) }, differs }) };
}

/** A setting the target cannot say; lost where the run uses it. */
function cannot(limit: string, used: (run: HandoffRun) => boolean): Spelling {
  return { keys: [], limit, spell: (run) => (used(run) ? { set: {}, lost: limit } : { set: {} }) };
}

/** The same spelling in each target, under its own name for the key (or key prefix). */
function named(
  names: Record<TargetName, string>,
  make: (name: string) => Spelling,
): Record<TargetName, Spelling> {
  return {
    trl: make(names.trl),
    axolotl: make(names.axolotl),
    llamafactory: make(names.llamafactory),
  };
}

/** HF TrainingArguments' keys: in run_config.json's `training`, at the top of both YAML files. */
const TRAINING_ARGUMENTS = { trl: 'training.', axolotl: '', llamafactory: '' };

/** A transformers TrainingArguments field, which every target spells as transformers does. */
function hf(name: string, value: (run: HandoffRun) => unknown, differs?: string) {
  return named(TRAINING_ARGUMENTS, (prefix) => key(prefix + name, value, differs));
}

/** One spelling for every target. */
function everywhere(spelling: Spelling): Record<TargetName, Spelling> {
  return named(TRAINING_ARGUMENTS, () => spelling);
}

/** Keys with a prefix (`lora.` for run_config.json's LoraConfig arguments). */
function prefixed(prefix: string, values: Readonly<Record<string, unknown>>) {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [prefix + k, v]));
}

/** Axolotl and LLaMA-Factory read alpha (and Axolotl the patterns) as integers. */
function integerAlpha(target: string, name: string): Spelling {
  return {
    keys: [name],
    spell: (run) => {
      const { alpha } = lora(run);
      const written = Math.round(alpha);
      return {
        set: { [name]: written },
        lost:
          written === alpha
            ? undefined
            : `alpha ${alpha} is not a whole number, which ${target}'s ${name} needs: ${written} is written, so the scaling differs`,
      };
    },
  };
}

const hasPatterns = (run: HandoffRun) =>
  Object.keys(lora(run).rankPattern ?? {}).length +
    Object.keys(lora(run).alphaPattern ?? {}).length >
  0;

// ─── Inits ───────────────────────────────────────────────────────────────────────────────────

type InitName = (typeof INITS)[number]['name'];
type PeftInit = { init_lora_weights: true | string } & Record<string, unknown>;

/**
 * How PEFT's LoraConfig starts each studio init: init_lora_weights and its sub-configuration,
 * spelled out with the studio's values (EVA's ρ and τ, and every input position as the studio
 * reads them; LoRA-GA's ArB2r split and stable scaling with γ 16, lora-ga.ts); null where PEFT
 * has no such init.
 */
const PEFT_INITS: Record<InitName, ((init: InitMethod) => PeftInit) | null> = {
  lora: () => ({ init_lora_weights: true }),
  gaussian: () => ({ init_lora_weights: 'gaussian' }),
  // PEFT trains every factor: a frozen A has no LoraConfig field.
  ffa: null,
  orthogonal: null,
  svfit: null,
  s2ft: null,
  lora_sb: null,
  sorsa: null,
  loldu: null,
  pissa: () => ({ init_lora_weights: 'pissa' }),
  pissa_niter_N: (init) => ({ init_lora_weights: init }),
  milora: null,
  olora: () => ({ init_lora_weights: 'olora' }),
  eva: () => ({
    init_lora_weights: 'eva',
    eva_config: { rho: EVA_RHO, tau: EVA_TAU, use_label_mask: false },
  }),
  corda_ipm: () => ({ init_lora_weights: 'corda', corda_config: { corda_method: 'ipm' } }),
  corda_kpm: () => ({ init_lora_weights: 'corda', corda_config: { corda_method: 'kpm' } }),
  lora_ga: () => ({
    init_lora_weights: 'lora_ga',
    lora_ga_config: { direction: 'ArB2r', scale: 'stable', stable_gamma: 16 },
  }),
};

/** Where an init's computation differs from PEFT's though PEFT runs the same method. */
const PEFT_INIT_DIFFERS: Partial<Record<InitName, string>> = {
  eva: "PEFT's EVA finds the components by an incremental SVD of the inputs and may leave a module at rank 0 when it moves rank between modules; the studio's takes them from the inputs' covariance and keeps every module at rank 1 or more",
};

const peftInit = (run: HandoffRun): PeftInit | null =>
  PEFT_INITS[initEntry(lora(run).init).name as InitName]?.(lora(run).init) ?? null;
const initName = (run: HandoffRun) => initEntry(lora(run).init).shortName;
const isDefaultInit = (run: HandoffRun) => peftInit(run)?.init_lora_weights === true;
/** Axolotl hands init_lora_weights to PEFT as it is: inits that need neither data nor a sub-config. */
const axolotlInit = (run: HandoffRun): string | null => {
  const peft = peftInit(run);
  const entry = initEntry(lora(run).init);
  return peft && Object.keys(peft).length === 1 && entry.statistic === 'none'
    ? String(peft.init_lora_weights)
    : null;
};
/** LLaMA-Factory's PiSSA: pissa_iter N for the fast SVD, -1 for the exact one. */
const llamaFactoryPissa = (run: HandoffRun): number | null => {
  const name = String(peftInit(run)?.init_lora_weights);
  if (name === 'pissa') return -1;
  return name.startsWith('pissa_niter_') ? Number(name.slice('pissa_niter_'.length)) : null;
};
const mutates = (run: HandoffRun) => initEntry(lora(run).init).mutatesBase;
const defaultInitInstead = (target: string, run: HandoffRun) =>
  `${target} cannot start from ${initName(run)}: it starts from PEFT's default init (A random, B zero)`;

// ─── Variants, schedules, data ───────────────────────────────────────────────────────────────

/** adapter_config.json's variant flags (use_dora) as Axolotl and LLaMA-Factory name them. */
const AXOLOTL_FLAGS: Record<string, string> = { use_dora: 'peft_use_dora' };
const LLAMAFACTORY_FLAGS: Record<string, string> = { use_dora: 'use_dora' };
const PEFT_FLAG_NAMES = VARIANTS.flatMap((v) => (v.peftFlag === null ? [] : [v.peftFlag]));

function variantFlags(target: string, names: Record<string, string>): Spelling {
  return {
    keys: PEFT_FLAG_NAMES.map((f) => names[f]),
    spell: (run) => {
      const flags = Object.entries(peftFlags(lora(run).variant));
      const missing = flags.filter(([f, on]) => on && !(f in names));
      return {
        set: Object.fromEntries(flags.filter(([f]) => f in names).map(([f, on]) => [names[f], on])),
        lost:
          missing.length > 0
            ? `${target} has no ${variantEntry(lora(run).variant).shortName}: plain LoRA is trained`
            : undefined,
      };
    },
  };
}

/**
 * schedule.ts keeps wsd's decay share to itself: its decay starts at the last step at the peak,
 * so it lasts one step more than the steps below the peak.
 */
function wsdDecaySteps(t: TrainSettings): number {
  const o = { schedule: 'wsd', lr: 1, warmupSteps: t.warmupSteps, totalSteps: t.steps } as const;
  let below = 0;
  for (let s = t.warmupSteps; s < t.steps; s++) if (learningRate(s, o) < 1) below++;
  return below + 1;
}

/** Each studio schedule as transformers' lr_scheduler_type and its lr_scheduler_kwargs. */
const HF_SCHEDULES: Record<Schedule, (t: TrainSettings) => [string, Record<string, unknown>?]> = {
  constant: (t) => [t.warmupSteps > 0 ? 'constant_with_warmup' : 'constant'],
  cosine: () => ['cosine'],
  wsd: (t) => [
    'warmup_stable_decay',
    { num_decay_steps: wsdDecaySteps(t), decay_type: 'linear', min_lr_ratio: 0 },
  ],
};

function schedule(typeKey: string, kwargsKey: string): Spelling {
  return {
    keys: [typeKey, kwargsKey],
    spell: (run) => {
      const [type, kwargs] = HF_SCHEDULES[train(run).schedule](train(run));
      return { set: kwargs ? { [typeKey]: type, [kwargsKey]: kwargs } : { [typeKey]: type } };
    },
  };
}

/** How Axolotl reads each kind of example (its dataset `type`). */
const AXOLOTL_TYPES: Record<ExampleKind, Record<string, unknown>> = {
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

const axolotlDataset = (run: HandoffRun, file: string) => [
  { path: file, ds_type: 'json', split: 'train', ...AXOLOTL_TYPES[run.dataset.kind] },
];

/** How LLaMA-Factory reads each kind: its stage, template and dataset_info.json columns. */
const LLAMAFACTORY_KINDS: Record<
  ExampleKind,
  { stage: string; template?: string; info: Record<string, unknown> }
> = {
  text: { stage: 'pt', template: 'empty', info: { columns: { prompt: 'text' } } },
  completion: {
    stage: 'sft',
    template: 'empty',
    info: { columns: { prompt: 'prompt', response: 'completion' } },
  },
  // No template: LLaMA-Factory rebuilds the tokenizer's own chat template.
  chat: {
    stage: 'sft',
    info: {
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
  },
};

export const LLAMAFACTORY_TRAIN = 'studio_train';
export const LLAMAFACTORY_VALIDATION = 'studio_validation';

const llamaFactoryDataset = (run: HandoffRun, file: string) => ({
  file_name: file.slice(file.lastIndexOf('/') + 1),
  ...LLAMAFACTORY_KINDS[run.dataset.kind].info,
});

const SPLITS: Record<SplitKind, (run: HandoffRun) => string> = {
  examples: (run) =>
    `${run.dataset.validation.length} of ${run.dataset.train.length + run.dataset.validation.length} examples: the studio's own split (fraction ${run.dataset.validationFraction}, seed ${run.dataset.seed})`,
  characters: (run) =>
    `the one text cut before its last ${run.dataset.validationFraction} of characters (the studio cuts its tokens)`,
  none: (run) =>
    run.dataset.validationFraction === 0
      ? 'none (fraction 0)'
      : `none: the studio cut its one example by tokens, which cannot be done without the model's tokenizer`,
};

/** How the validation examples were chosen, in words. */
export const splitDescription = (run: HandoffRun): string => SPLITS[run.dataset.split](run);

const splitDiffers = (run: HandoffRun): string | undefined =>
  run.dataset.split === 'examples' ? undefined : splitDescription(run);

const evalEvery = (run: HandoffRun) => train(run).evalEvery || train(run).steps;

// ─── The table ───────────────────────────────────────────────────────────────────────────────

export const SETTINGS: readonly HandoffSetting[] = [
  {
    name: 'Base model',
    studio: '`--model`',
    value: (run) => run.modelId ?? `${run.baseModel} (a local file)`,
    targets: {
      trl: key('model', (run) => run.modelId),
      axolotl: key('base_model', (run) => modelOrPlaceholder(run)),
      llamafactory: key('model_name_or_path', (run) => modelOrPlaceholder(run)),
    },
  },
  {
    name: 'Training data and loss mask',
    studio:
      '`--data`: text (BOS + text + EOS, all trained), prompt/completion (prompt untrained), messages (chat template; assistant replies trained)',
    value: (run) => EXAMPLE_KINDS[run.dataset.kind].label,
    targets: {
      trl: {
        keys: ['data.train', 'sft.completion_only_loss', 'sft.assistant_only_loss'],
        spell: (run) => ({
          set: {
            'data.train': TRAIN_FILE,
            ...(run.dataset.kind === 'completion' ? { 'sft.completion_only_loss': true } : {}),
            ...(run.dataset.kind === 'chat' ? { 'sft.assistant_only_loss': true } : {}),
          },
          differs:
            run.dataset.kind === 'chat'
              ? "TRL masks all but the assistant replies only with a chat template that marks them ({% generation %}); with another, set sft.assistant_only_loss to false (every token trained) or give SFTConfig's chat_template_path"
              : undefined,
        }),
      },
      axolotl: {
        keys: ['datasets', 'train_on_inputs'],
        spell: (run) => ({
          set: { datasets: axolotlDataset(run, TRAIN_FILE), train_on_inputs: false },
          differs:
            run.dataset.kind === 'completion'
              ? 'Axolotl tokenizes the prompt and the completion apart; the studio tokenizes them together'
              : undefined,
        }),
      },
      llamafactory: {
        keys: [
          'stage',
          'dataset',
          'dataset_dir',
          'template',
          'train_on_prompt',
          `dataset_info.${LLAMAFACTORY_TRAIN}`,
        ],
        spell: (run) => {
          const { stage, template } = LLAMAFACTORY_KINDS[run.dataset.kind];
          return {
            set: {
              stage,
              dataset: LLAMAFACTORY_TRAIN,
              dataset_dir: 'data',
              ...(template ? { template } : {}),
              train_on_prompt: false,
              [`dataset_info.${LLAMAFACTORY_TRAIN}`]: llamaFactoryDataset(run, TRAIN_FILE),
            },
            differs: {
              text: undefined,
              completion:
                "LLaMA-Factory's empty template adds no BOS and no EOS; the studio adds the tokenizer's BOS and an EOS after each completion",
              chat: "LLaMA-Factory rebuilds the tokenizer's chat template (or set `template:` to its own template for the model) and needs user and assistant turns to alternate",
            }[run.dataset.kind],
          };
        },
      },
    },
  },
  {
    name: 'Validation split',
    studio: '`--val-fraction`: a seeded shuffle of the examples',
    value: splitDescription,
    targets: {
      trl: {
        keys: ['data.validation'],
        spell: (run) => ({
          set: { 'data.validation': hasValidation(run) ? VALIDATION_FILE : null },
          differs: splitDiffers(run),
        }),
      },
      axolotl: {
        keys: ['test_datasets'],
        spell: (run) => ({
          set: hasValidation(run) ? { test_datasets: axolotlDataset(run, VALIDATION_FILE) } : {},
          differs: splitDiffers(run),
        }),
      },
      llamafactory: {
        keys: ['eval_dataset', `dataset_info.${LLAMAFACTORY_VALIDATION}`],
        spell: (run) => ({
          set: hasValidation(run)
            ? {
                eval_dataset: LLAMAFACTORY_VALIDATION,
                [`dataset_info.${LLAMAFACTORY_VALIDATION}`]: llamaFactoryDataset(
                  run,
                  VALIDATION_FILE,
                ),
              }
            : {},
          differs: splitDiffers(run),
        }),
      },
    },
  },
  {
    name: 'Sequence length',
    studio: '`--seq-len`',
    value: (run) => String(run.seqLen),
    targets: {
      trl: key('sft.max_length', (run) => run.seqLen),
      axolotl: key('sequence_len', (run) => run.seqLen),
      llamafactory: key('cutoff_len', (run) => run.seqLen),
    },
  },
  {
    name: 'Packing',
    studio:
      'examples back to back in one stream, cut into windows of the sequence length; no attention mask between examples',
    value: () => 'always',
    targets: {
      trl: {
        keys: ['sft.packing', 'sft.packing_strategy'],
        spell: () => ({
          set: { 'sft.packing': true, 'sft.packing_strategy': 'wrapped' },
          differs:
            "TRL's windows do not overlap: the first token of each is no target (the studio's overlap by one token)",
        }),
      },
      axolotl: key(
        'sample_packing',
        () => true,
        'Axolotl packs whole examples into each sequence, each attending only to itself, and drops examples longer than sequence_len; the studio cuts one stream, and examples see those before them',
      ),
      llamafactory: {
        keys: ['packing', 'neat_packing'],
        spell: (run) => ({
          set: { packing: true, neat_packing: false },
          differs:
            run.dataset.kind === 'text'
              ? "LLaMA-Factory's pretraining stage drops the stream's last partial window"
              : 'LLaMA-Factory packs whole examples into each sequence and truncates longer ones at cutoff_len; the studio cuts one stream',
        }),
      },
    },
  },
  {
    name: 'Rank',
    studio: '`--rank`',
    value: (run) => String(lora(run).rank),
    targets: {
      trl: key('lora.r', (run) => lora(run).rank),
      axolotl: key('lora_r', (run) => lora(run).rank),
      llamafactory: key('lora_rank', (run) => lora(run).rank),
    },
  },
  {
    name: 'Alpha',
    studio: '`--alpha`',
    value: (run) => String(lora(run).alpha),
    targets: {
      trl: key('lora.lora_alpha', (run) => lora(run).alpha),
      axolotl: integerAlpha('Axolotl', 'lora_alpha'),
      llamafactory: integerAlpha('LLaMA-Factory', 'lora_alpha'),
    },
  },
  {
    name: 'rsLoRA scaling',
    studio: '`--rslora`',
    value: (run) => String(lora(run).rslora),
    targets: {
      trl: key('lora.use_rslora', (run) => lora(run).rslora),
      axolotl: key('peft_use_rslora', (run) => lora(run).rslora),
      llamafactory: key('use_rslora', (run) => lora(run).rslora),
    },
  },
  {
    name: 'Target modules',
    studio: '`--targets` (resolved to the modules the run adapted)',
    value: (run) => run.modules.join(', '),
    targets: {
      trl: key('lora.target_modules', (run) => run.modules),
      axolotl: key('lora_target_modules', (run) => run.modules),
      llamafactory: key('lora_target', (run) => run.modules.join(',')),
    },
  },
  {
    name: 'Layers',
    studio: '`--layers`',
    value: (run) => lora(run).layers?.join(', ') ?? 'all',
    targets: {
      trl: {
        keys: ['lora.layers_to_transform'],
        spell: (run) => ({
          set: lora(run).layers ? { 'lora.layers_to_transform': lora(run).layers } : {},
        }),
      },
      axolotl: {
        keys: ['peft_layers_to_transform'],
        spell: (run) => ({
          set: lora(run).layers ? { peft_layers_to_transform: lora(run).layers } : {},
        }),
      },
      llamafactory: cannot(
        'no layer selection for LoRA: every layer is adapted',
        (run) => lora(run).layers !== undefined,
      ),
    },
  },
  {
    name: 'Rank and alpha patterns',
    studio: "a spec's rankPattern / alphaPattern (PEFT's rank_pattern / alpha_pattern)",
    value: (run) =>
      hasPatterns(run)
        ? JSON.stringify({ rank: lora(run).rankPattern, alpha: lora(run).alphaPattern })
        : 'none',
    targets: {
      trl: {
        keys: ['lora.rank_pattern', 'lora.alpha_pattern'],
        spell: (run) => ({
          set: hasPatterns(run)
            ? {
                'lora.rank_pattern': lora(run).rankPattern ?? {},
                'lora.alpha_pattern': lora(run).alphaPattern ?? {},
              }
            : {},
        }),
      },
      axolotl: {
        keys: ['lora_rank_pattern', 'lora_alpha_pattern'],
        spell: (run) => {
          const alphas = Object.values(lora(run).alphaPattern ?? {});
          return {
            set: hasPatterns(run)
              ? {
                  lora_rank_pattern: lora(run).rankPattern ?? {},
                  lora_alpha_pattern: lora(run).alphaPattern ?? {},
                }
              : {},
            lost: alphas.every(Number.isInteger)
              ? undefined
              : "Axolotl's lora_alpha_pattern takes whole numbers only: it refuses this one",
          };
        },
      },
      llamafactory: cannot('no per-module rank or alpha', hasPatterns),
    },
  },
  {
    name: 'Dropout',
    studio: '`--dropout`',
    value: (run) => String(lora(run).dropout),
    targets: {
      trl: key('lora.lora_dropout', (run) => lora(run).dropout),
      axolotl: key('lora_dropout', (run) => lora(run).dropout),
      llamafactory: key('lora_dropout', (run) => lora(run).dropout),
    },
  },
  {
    name: 'Initialisation',
    studio: '`--init`',
    value: (run) => `${lora(run).init} (${initName(run)})`,
    targets: {
      trl: {
        keys: [
          'lora.init_lora_weights',
          'lora.eva_config',
          'lora.corda_config',
          'lora.lora_ga_config',
          'init.data_batches',
        ],
        limit: 'not MiLoRA',
        spell: (run) => {
          const peft = peftInit(run);
          const { batches, name } = initEntry(lora(run).init);
          return {
            set: {
              ...prefixed('lora.', peft ?? { init_lora_weights: true }),
              'init.data_batches': peft ? batches : 0,
            },
            lost: peft ? undefined : defaultInitInstead('PEFT', run),
            differs:
              peft && batches > 0
                ? `train.py reads the first ${batches} batches of the training data for ${initName(run)}, as the studio does. ${PEFT_INIT_DIFFERS[name as InitName] ?? ''}`.trim()
                : undefined,
          };
        },
      },
      axolotl: {
        keys: ['peft_init_lora_weights'],
        limit: 'no init that reads the data (EVA, CorDA, LoRA-GA), no MiLoRA',
        spell: (run) => {
          const init = axolotlInit(run);
          return {
            set: init && !isDefaultInit(run) ? { peft_init_lora_weights: init } : {},
            lost: init ? undefined : defaultInitInstead('Axolotl', run),
          };
        },
      },
      llamafactory: {
        keys: ['pissa_init', 'pissa_iter'],
        limit: 'PiSSA only',
        spell: (run) => {
          const iter = llamaFactoryPissa(run);
          return {
            set: iter === null ? {} : { pissa_init: true, pissa_iter: iter },
            lost:
              iter !== null || isDefaultInit(run)
                ? undefined
                : defaultInitInstead('LLaMA-Factory', run),
          };
        },
      },
    },
  },
  {
    name: 'Adapter for the original base',
    studio:
      'base-mutating inits (PiSSA, OLoRA, CorDA, LoRA-GA…) export a rank-2r LoRA for the original base (`train --export plain`)',
    value: (run) => (mutates(run) ? 'converted (rank 2r)' : 'nothing to convert'),
    targets: {
      trl: key('init.convert_to_lora', (run) => mutates(run) && peftInit(run) !== null),
      axolotl: cannot(
        'saves the adapter as trained, which applies to the residual base PEFT made from the weights, not to the original base',
        (run) => mutates(run) && axolotlInit(run) !== null,
      ),
      llamafactory: {
        keys: ['pissa_convert'],
        limit: 'PiSSA only',
        spell: (run) => ({ set: llamaFactoryPissa(run) === null ? {} : { pissa_convert: true } }),
      },
    },
  },
  {
    name: 'Variant',
    studio: '`--variant` (`--dora`)',
    value: (run) => variantEntry(lora(run).variant).shortName,
    targets: {
      trl: {
        keys: PEFT_FLAG_NAMES.map((f) => `lora.${f}`),
        spell: (run) => ({ set: prefixed('lora.', peftFlags(lora(run).variant)) }),
      },
      axolotl: variantFlags('Axolotl', AXOLOTL_FLAGS),
      llamafactory: variantFlags('LLaMA-Factory', LLAMAFACTORY_FLAGS),
    },
  },
  {
    name: 'Steps',
    studio: '`--steps`',
    value: (run) => String(train(run).steps),
    targets: hf('max_steps', (run) => train(run).steps),
  },
  {
    name: 'Learning rate',
    studio: '`--lr`',
    value: (run) => String(train(run).lr),
    targets: hf('learning_rate', (run) => train(run).lr),
  },
  {
    name: 'Schedule',
    studio: '`--schedule` (wsd decays linearly over its last steps)',
    value: (run) => train(run).schedule,
    targets: {
      trl: schedule('training.lr_scheduler_type', 'training.lr_scheduler_kwargs'),
      axolotl: schedule('lr_scheduler', 'lr_scheduler_kwargs'),
      llamafactory: schedule('lr_scheduler_type', 'lr_scheduler_kwargs'),
    },
  },
  {
    name: 'Warmup steps',
    studio: '`--warmup`',
    value: (run) => String(train(run).warmupSteps),
    targets: hf(
      'warmup_steps',
      (run) => train(run).warmupSteps,
      "transformers' warmup starts from 0 (step s: lr·s/N); the studio's from lr/N (lr·(s+1)/N)",
    ),
  },
  {
    name: 'Batch size',
    studio: '`--batch` (sequences per micro-batch)',
    value: (run) => String(train(run).batchSize),
    targets: named(
      {
        trl: 'training.per_device_train_batch_size',
        axolotl: 'micro_batch_size',
        llamafactory: 'per_device_train_batch_size',
      },
      (name) =>
        key(
          name,
          (run) => train(run).batchSize,
          "per GPU: on N GPUs a step sees N times the sequences (divide the gradient accumulation by N to keep the studio's batch)",
        ),
    ),
  },
  {
    name: 'Gradient accumulation',
    studio: '`--grad-accum`',
    value: (run) => String(train(run).gradAccum),
    targets: hf('gradient_accumulation_steps', (run) => train(run).gradAccum),
  },
  {
    name: 'Optimiser',
    studio: 'AdamW (always)',
    value: () => 'AdamW',
    targets: named({ trl: 'training.optim', axolotl: 'optimizer', llamafactory: 'optim' }, (name) =>
      key(name, () => 'adamw_torch'),
    ),
  },
  {
    name: 'Weight decay',
    studio: '`--weight-decay`',
    value: (run) => String(train(run).weightDecay),
    targets: hf('weight_decay', (run) => train(run).weightDecay),
  },
  {
    name: 'AdamW β₁',
    studio: '`--adam-beta1`',
    value: (run) => String(train(run).adamBeta1),
    targets: hf('adam_beta1', (run) => train(run).adamBeta1),
  },
  {
    name: 'AdamW β₂',
    studio: '`--adam-beta2`',
    value: (run) => String(train(run).adamBeta2),
    targets: hf('adam_beta2', (run) => train(run).adamBeta2),
  },
  {
    name: 'AdamW ε',
    studio: '`--adam-epsilon`',
    value: (run) => String(train(run).adamEpsilon),
    targets: hf('adam_epsilon', (run) => train(run).adamEpsilon),
  },
  {
    name: 'Gradient clipping',
    studio: '`--max-grad-norm` (0: none)',
    value: (run) => String(train(run).maxGradNorm),
    targets: hf('max_grad_norm', (run) => train(run).maxGradNorm),
  },
  {
    name: 'Evaluation',
    studio: '`--eval-every` (0: at the start and the end only)',
    value: (run) =>
      hasValidation(run)
        ? `at the start and every ${evalEvery(run)} steps`
        : 'none (no validation)',
    targets: {
      trl: {
        keys: ['training.eval_strategy', 'training.eval_steps', 'training.eval_on_start'],
        spell: (run) => ({
          set: hasValidation(run)
            ? {
                'training.eval_strategy': 'steps',
                'training.eval_steps': evalEvery(run),
                'training.eval_on_start': true,
              }
            : { 'training.eval_strategy': 'no' },
        }),
      },
      axolotl: {
        keys: ['eval_steps'],
        limit: 'no evaluation at the start',
        spell: (run) =>
          hasValidation(run)
            ? {
                set: { eval_steps: evalEvery(run) },
                lost: 'Axolotl does not evaluate before the first step',
              }
            : { set: {} },
      },
      llamafactory: {
        keys: ['eval_strategy', 'eval_steps', 'eval_on_start'],
        spell: (run) => ({
          set: hasValidation(run)
            ? { eval_strategy: 'steps', eval_steps: evalEvery(run), eval_on_start: true }
            : {},
        }),
      },
    },
  },
  {
    name: 'Validation sequences per evaluation',
    studio: "the Train panel's cap on the sequences an evaluation reads",
    value: (run) => String(train(run).evalSequences),
    targets: everywhere(
      cannot('no cap: evaluates the whole validation split', (run) => hasValidation(run)),
    ),
  },
  {
    name: 'Samples while training',
    studio: '`--sample`, `--sample-tokens`',
    value: (run) =>
      train(run).samplePrompts.length > 0 ? JSON.stringify(train(run).samplePrompts) : 'none',
    targets: everywhere(
      cannot(
        'no samples while training: generate from the saved adapter afterwards',
        (run) => train(run).samplePrompts.length > 0,
      ),
    ),
  },
  {
    name: 'Checkpoints',
    studio: '`--checkpoint-every` (0: at the end only)',
    value: (run) => String(train(run).checkpointEvery),
    targets: named(TRAINING_ARGUMENTS, (p) => ({
      keys: [`${p}save_strategy`, `${p}save_steps`],
      spell: (run) => ({
        set:
          train(run).checkpointEvery > 0
            ? { [`${p}save_strategy`]: 'steps', [`${p}save_steps`]: train(run).checkpointEvery }
            : { [`${p}save_strategy`]: 'no' },
      }),
    })),
  },
  {
    name: 'Seed',
    studio: '`--seed` (data split and order, init draws, dropout)',
    value: (run) => String(train(run).seed),
    targets: hf(
      'seed',
      (run) => train(run).seed,
      "the same seed feeds other generators: the data order and the init's random draws differ from the studio's (the split is the studio's, in the files)",
    ),
  },
  {
    name: 'Recompute activations',
    studio: '`--recompute`',
    value: (run) => String(train(run).recompute),
    targets: {
      trl: {
        keys: ['training.gradient_checkpointing', 'training.gradient_checkpointing_kwargs'],
        spell: (run) => ({
          set: train(run).recompute
            ? {
                'training.gradient_checkpointing': true,
                'training.gradient_checkpointing_kwargs': { use_reentrant: false },
              }
            : { 'training.gradient_checkpointing': false },
        }),
      },
      axolotl: key('gradient_checkpointing', (run) => train(run).recompute),
      llamafactory: key('disable_gradient_checkpointing', (run) => !train(run).recompute),
    },
  },
  {
    name: 'LoRA-Pro',
    studio: '`--lora-pro`',
    value: (run) => String(train(run).loraPro),
    targets: everywhere(
      cannot('no LoRA-Pro: the factors get their plain gradients', (run) => train(run).loraPro),
    ),
  },
  {
    name: 'DyLoRA',
    studio: '`--dylora`',
    value: (run) => String(lora(run).dylora === true),
    targets: everywhere(
      cannot(
        'no DyLoRA: every step trains the full rank, so the adapter cannot be cut to a smaller one',
        (run) => lora(run).dylora === true,
      ),
    ),
  },
];

/** The placeholder a YAML config names for a base the run loaded from a local file. */
export function modelOrPlaceholder(run: HandoffRun): string {
  return run.modelId ?? `/path/to/${run.baseModel}`;
}
