// The README written beside a hand-off (how to run it, the run's settings as the target spells
// them, what the target cannot express and where it differs) and docs/sharing.md's table.
import type { SpelledSetting } from './export.ts';
import { EXAMPLE_KINDS, TRAIN_FILE, VALIDATION_FILE } from './dataset.ts';
import { hasValidation, type HandoffRun } from './run.ts';
import {
  SETTINGS,
  splitDescription,
  TARGET_NAMES,
  TARGETS,
  type Spelling,
  type TargetName,
} from './settings.ts';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const row = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
const code = (keys: readonly string[]) => keys.map((k) => `\`${k}\``).join(', ');

/** A spelling as the docs' table shows it: its keys, and what it can never say. */
function keysCell(spelling: Spelling): string {
  const limit = spelling.limit ? ` (${spelling.limit})` : '';
  return spelling.keys.length > 0 ? code(spelling.keys) + limit : `—${limit}`;
}

/** docs/sharing.md's hand-off table: every setting, and the keys each target spells it with. */
export function handoffTable(): string {
  return [
    row(['Setting', 'Studio', ...TARGET_NAMES.map((t) => TARGETS[t].label)]),
    row(['---', '---', ...TARGET_NAMES.map(() => '---')]),
    ...SETTINGS.map((s) =>
      row([s.name, s.studio, ...TARGET_NAMES.map((t) => keysCell(s.targets[t]))]),
    ),
  ].join('\n');
}

const shown = (set: Readonly<Record<string, unknown>>) =>
  Object.entries(set)
    .map(([key, value]) => `\`${key}: ${JSON.stringify(value)}\``)
    .join(', ') || '—';

const bullets = (items: readonly [string, string | undefined][], none: string) => {
  const given = items.filter((i): i is [string, string] => i[1] !== undefined);
  return given.length > 0 ? given.map(([name, text]) => `- ${name}: ${text}.`) : [none];
};

export function readme(
  run: HandoffRun,
  target: TargetName,
  settings: readonly SpelledSetting[],
  howToRun: readonly string[],
): string {
  const { label, config } = TARGETS[target];
  const { dataset } = run;
  const replaced =
    run.dataReplacedAt.length > 0
      ? [
          `The run moved onto other data at step ${run.dataReplacedAt.join(', ')}: these files hold the data it trained on last.`,
          '',
        ]
      : [];
  return [
    `# ${run.modelId ?? run.baseModel}: a LoRA Studio run for ${label}`,
    '',
    `Written by \`lora-studio export-run\`. It trains the run's recipe from the start on ${label}: ${run.config.train.steps} steps (the studio had run ${run.stepsDone}). Its settings are in ${config}; the table below says where each comes from.`,
    '',
    '## How to run',
    '',
    ...howToRun,
    '',
    '## The data',
    '',
    `${TRAIN_FILE} (${dataset.train.length} examples)${hasValidation(run) ? ` and ${VALIDATION_FILE} (${dataset.validation.length})` : ''}: JSON lines of ${EXAMPLE_KINDS[dataset.kind].label} records, as the studio read them from ${run.dataFile}, in the layout Hugging Face datasets loads. Validation: ${splitDescription(run)}.`,
    '',
    ...replaced,
    '## Settings',
    '',
    row(['Setting', 'Studio', 'This run', label]),
    row(['---', '---', '---', '---']),
    ...settings.map(({ setting, spelled }) =>
      row([setting.name, setting.studio, setting.value(run), shown(spelled.set)]),
    ),
    '',
    `## What ${label} cannot express`,
    '',
    ...bullets(
      settings.map(({ setting, spelled }) => [setting.name, spelled.lost]),
      'Nothing: every setting of this run is expressed.',
    ),
    '',
    `## Where ${label} differs`,
    '',
    ...bullets(
      settings.map(({ setting, spelled }) => [setting.name, spelled.differs]),
      'Nowhere that the studio knows of.',
    ),
    '',
  ].join('\n');
}
