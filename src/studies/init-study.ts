// The comparison of docs/initialisations.md: every init and training variant on stories260K, on
// both invented style corpora, at equal rank, budget, data, seed and learning rate; the
// validation loss measured along the way. Real training, one run per (variant, style). With
// `ranks`, each plain-LoRA-shaped run (DyLoRA's, LoRA's) is also cut to every rank 1…r and
// measured again: what DyLoRA's nested ranks buy.
import { TARGET_PRESETS, type InitMethod, type LoraSpec } from '../adapters/config.ts';
import { initChoice, INITS } from '../adapters/inits.ts';
import {
  PLAIN_VARIANT,
  VARIANTS as ADAPTER_VARIANTS,
  type VariantName,
} from '../adapters/variants.ts';
import type { Gpu } from '../gpu/device.ts';
import { adapterTerms, readPeftAdapter } from '../adapters/peft-read.ts';
import { truncateAdapter } from '../adapters/truncate.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import type { GpuModel } from '../model/forward.ts';
import type { Sequence } from '../train/data.ts';
import { batchedScorer, meanLoss } from '../train/evaluate.ts';
import type { TrainableAdapter } from '../train/trainable.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { prepareDataset } from '../train/data.ts';
import { DEFAULT_SETTINGS, type TrainSettings } from '../train/settings.ts';
import { SNORP_STYLE, ZIMMY_STYLE } from './style-corpus.ts';
import { train } from '../train/trainer.ts';

export interface Variant {
  label: string;
  init: InitMethod;
  variant?: VariantName;
  loraPro?: boolean;
  dylora?: boolean;
  /** SORSA's regulariser weight, where the row sets its own. */
  orthonormalWeight?: number;
}

/** Every init of the table, then every adapter variant, LoRA-Pro and DyLoRA on the default init. */
export const VARIANTS: Variant[] = [
  ...INITS.map((e) => ({ label: e.shortName, init: initChoice(e) })),
  ...ADAPTER_VARIANTS.filter((e) => e.name !== PLAIN_VARIANT).map((e): Variant => ({
    label: e.shortName,
    init: 'lora',
    variant: e.name,
  })),
  { label: 'LoRA-Pro', init: 'lora', loraPro: true },
  { label: 'DyLoRA', init: 'lora', dylora: true },
  // What SORSA's regulariser changes: the same run without it.
  { label: 'SORSA γ = 0', init: 'sorsa', orthonormalWeight: 0 },
];

export interface StudySettings {
  /** Labels of the variants to run (all when absent). */
  only?: readonly string[];
  steps: number;
  lr: number;
  rank: number;
  evalEvery: number;
  /** Also measure the DyLoRA and LoRA runs cut to every rank. */
  ranks?: boolean;
  /** SORSA's regulariser weight for the rows that do not set their own. */
  orthonormalWeight?: number;
}

export interface StudyRun {
  variant: string;
  style: string;
  /** Validation loss by step (step 0: before training). */
  curve: { step: number; valLoss: number }[];
  seconds: number;
  /** With `ranks`: the validation loss of the adapter cut to rank 1, 2, …, r. */
  byRank?: number[];
  /** For SORSA: the orthonormality error at the last step. */
  orthonormality?: number;
}

/** The validation loss of a trained adapter's PEFT export cut to each rank 1…r. */
async function lossesByRank(
  gpu: Gpu,
  model: GpuModel,
  adapter: TrainableAdapter,
  validation: readonly Sequence[],
): Promise<number[]> {
  const { files } = await adapter.peftFiles('stories260K', model.config);
  const losses: number[] = [];
  for (let rank = 1; rank <= adapter.spec.rank; rank++) {
    const cut = readPeftAdapter(truncateAdapter(files, rank, 'cut'), 'cut');
    const applied = await adapterTerms(gpu, model.base, [{ adapter: cut, weight: 1 }]);
    try {
      model.setAdapters(applied.terms);
      losses.push(
        (await meanLoss(batchedScorer(gpu, model.transformer, 4), validation))?.loss ?? NaN,
      );
    } finally {
      model.setAdapters(new Map());
      releaseTensor(gpu, ...applied.tensors);
    }
  }
  return losses;
}

export async function initStudy(
  gpu: Gpu,
  model: GpuModel,
  tokenizer: TextTokenizer,
  s: StudySettings,
  log: (line: string) => void = () => undefined,
): Promise<StudyRun[]> {
  const runs: StudyRun[] = [];
  for (const style of [ZIMMY_STYLE, SNORP_STYLE]) {
    const options = { seqLen: 64, validationFraction: 0.1, seed: 0 };
    const data = prepareDataset(style.stories(120, 1), `${style.name}.txt`, tokenizer, options);
    for (const v of VARIANTS.filter((x) => !s.only || s.only.includes(x.label))) {
      log(`${style.name}: ${v.label}`);
      const lora: LoraSpec = {
        rank: s.rank,
        alpha: 2 * s.rank,
        rslora: false,
        targets: TARGET_PRESETS['all-linear'],
        dropout: 0,
        init: v.init,
        variant: v.variant,
        dylora: v.dylora,
      };
      const settings: TrainSettings = {
        ...DEFAULT_SETTINGS,
        steps: s.steps,
        lr: s.lr,
        warmupSteps: 2,
        evalEvery: s.evalEvery,
        checkpointEvery: 0,
        loraPro: v.loraPro ?? false,
        orthonormalWeight:
          v.orthonormalWeight ?? s.orthonormalWeight ?? DEFAULT_SETTINGS.orthonormalWeight,
      };
      const start = performance.now();
      const result = await train({
        gpu,
        model,
        baseModel: 'stories260K',
        data,
        config: { lora, train: settings },
      });
      const seconds = (performance.now() - start) / 1000;
      const cuttable = v.init === 'lora' && !v.variant && !v.loraPro;
      const byRank =
        s.ranks && cuttable
          ? await lossesByRank(gpu, model, result.adapter, data.validation)
          : undefined;
      result.adapter.dispose();
      runs.push({
        variant: v.label,
        style: style.name,
        curve: result.history.flatMap((p) =>
          p.valLoss === undefined ? [] : [{ step: p.step, valLoss: p.valLoss }],
        ),
        seconds,
        byRank,
        orthonormality: result.history.findLast((p) => p.orthonormality !== undefined)
          ?.orthonormality,
      });
    }
  }
  return runs;
}

/** One markdown table per style: a row per variant, a column per evaluated step. */
export function studyTables(runs: readonly StudyRun[]): string {
  const styles = [...new Set(runs.map((r) => r.style))];
  return [curveTables(runs, styles), rankTable(runs), orthonormalityTable(runs)]
    .filter((t) => t !== '')
    .join('\n\n');
}

/** SORSA's runs: how far from orthonormal their singular vectors ended. */
function orthonormalityTable(runs: readonly StudyRun[]): string {
  const measured = runs.filter((r) => r.orthonormality !== undefined);
  if (measured.length === 0) return '';
  return [
    'Orthonormality error (mean ‖BᵀB − I‖_F, ‖A·Aᵀ − I‖_F) at the last step:',
    '',
    '| style | variant | error |',
    '|---|---|---|',
    ...measured.map(
      (r) => `| ${r.style} | ${r.variant} | ${(r.orthonormality ?? 0).toExponential(2)} |`,
    ),
  ].join('\n');
}

/** The runs cut to each rank: a row per (style, variant), a column per rank. */
function rankTable(runs: readonly StudyRun[]): string {
  const cut = runs.filter((r) => r.byRank);
  if (cut.length === 0) return '';
  const ranks = cut[0].byRank?.map((_, i) => i + 1) ?? [];
  return [
    'Validation loss of the adapter cut to rank b (`lora-studio truncate`), at the last step:',
    '',
    `| style | variant | ${ranks.map((b) => `b = ${b}`).join(' | ')} |`,
    `|---|---|${ranks.map(() => '---|').join('')}`,
    ...cut.map(
      (r) =>
        `| ${r.style} | ${r.variant} | ${(r.byRank ?? []).map((l) => l.toFixed(3)).join(' | ')} |`,
    ),
  ].join('\n');
}

function curveTables(runs: readonly StudyRun[], styles: readonly string[]): string {
  return styles
    .map((style) => {
      const rows = runs.filter((r) => r.style === style);
      const steps = rows[0].curve.map((p) => p.step);
      const best = Math.min(...rows.map((r) => r.curve.at(-1)!.valLoss));
      return [
        `Validation loss on held-out ${style} stories, by step:`,
        '',
        `| variant | ${steps.map((t) => `step ${t}`).join(' | ')} | time |`,
        `|---|${steps.map(() => '---|').join('')}---|`,
        ...rows.map((r) => {
          const cells = r.curve.map((p, i) => {
            const text = p.valLoss.toFixed(3);
            return i === r.curve.length - 1 && p.valLoss === best ? `**${text}**` : text;
          });
          return `| ${r.variant} | ${cells.join(' | ')} | ${r.seconds.toFixed(0)} s |`;
        }),
      ].join('\n');
    })
    .join('\n\n');
}
