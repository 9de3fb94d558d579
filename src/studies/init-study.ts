// The comparison of docs/initialisations.md: every init and training variant on stories260K, on
// both invented style corpora, at equal rank, budget, data, seed and learning rate; the
// validation loss measured along the way. Real training, one run per (variant, style).
import { TARGET_PRESETS, type InitMethod, type LoraSpec } from '../adapters/config.ts';
import { initChoice, INITS } from '../adapters/inits.ts';
import {
  PLAIN_VARIANT,
  VARIANTS as ADAPTER_VARIANTS,
  type VariantName,
} from '../adapters/variants.ts';
import type { Gpu } from '../gpu/device.ts';
import type { GpuModel } from '../model/forward.ts';
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
}

/** Every init of the table, then every adapter variant and LoRA-Pro on the default init. */
export const VARIANTS: Variant[] = [
  ...INITS.map((e) => ({ label: e.shortName, init: initChoice(e) })),
  ...ADAPTER_VARIANTS.filter((e) => e.name !== PLAIN_VARIANT).map((e): Variant => ({
    label: e.shortName,
    init: 'lora',
    variant: e.name,
  })),
  { label: 'LoRA-Pro', init: 'lora', loraPro: true },
];

export interface StudySettings {
  /** Labels of the variants to run (all when absent). */
  only?: readonly string[];
  steps: number;
  lr: number;
  rank: number;
  evalEvery: number;
}

export interface StudyRun {
  variant: string;
  style: string;
  /** Validation loss by step (step 0: before training). */
  curve: { step: number; valLoss: number }[];
  seconds: number;
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
      };
      const settings: TrainSettings = {
        ...DEFAULT_SETTINGS,
        steps: s.steps,
        lr: s.lr,
        warmupSteps: 2,
        evalEvery: s.evalEvery,
        checkpointEvery: 0,
        loraPro: v.loraPro ?? false,
      };
      const start = performance.now();
      const result = await train({
        gpu,
        model,
        baseModel: 'stories260K',
        data,
        config: { lora, train: settings },
      });
      result.adapter.dispose();
      runs.push({
        variant: v.label,
        style: style.name,
        curve: result.history.flatMap((p) =>
          p.valLoss === undefined ? [] : [{ step: p.step, valLoss: p.valLoss }],
        ),
        seconds: (performance.now() - start) / 1000,
      });
    }
  }
  return runs;
}

/** One markdown table per style: a row per variant, a column per evaluated step. */
export function studyTables(runs: readonly StudyRun[]): string {
  const styles = [...new Set(runs.map((r) => r.style))];
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
