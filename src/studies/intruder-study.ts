// The comparison "LoRA vs Full Fine-tuning: An Illusion of Equivalence" makes, at our scale
// (docs/initialisations.md): on the built-in stories260K and one style corpus, a full fine-tune
// of every linear module (their weights trained directly, with the gradient ∂L/∂W = gᵀ·x the
// backward pass hands to its observer, AdamW on them) against a rank-r LoRA on the same modules,
// the same steps and batches; then each module's intruder dimensions, side by side.
import { TARGET_PRESETS, adaptedModules, type LoraSpec } from '../adapters/config.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { adapterIntrusions, intrusion, INTRUDER_DEFAULTS } from '../analysis/intruders.ts';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { createTensor, releaseTensor, type Tensor } from '../gpu/tensor.ts';
import { matmul } from '../linalg/matmul.ts';
import { asF32 } from '../linalg/widen.ts';
import type { GpuModel } from '../model/forward.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import type { Transformer } from '../model/transformer.ts';
import { prepareDataset, sequenceAt, type Sequence } from '../train/data.ts';
import { batchedScorer, meanLoss, scoredCount } from '../train/evaluate.ts';
import { AdamW } from '../train/optimizer.ts';
import { learningRate } from '../train/schedule.ts';
import { DEFAULT_SETTINGS } from '../train/settings.ts';
import { batchLoss, tokenBatch } from '../train/step.ts';
import { train } from '../train/trainer.ts';
import type { StyleCorpus } from './style-corpus.ts';

export interface IntruderStudySettings {
  steps: number;
  /** LoRA's learning rate, and full fine-tuning's (smaller: every weight moves). */
  loraLr: number;
  fullLr: number;
  rank: number;
}

/** Per module, each of W_t's top k vectors' best |cosine| with W₀'s (intruders lie below ε). */
export interface IntruderStudyRow {
  path: string;
  full: number[];
  lora: number[];
}

/** The thresholds ε the study counts intruders at (the paper sweeps ε). */
export const STUDY_THRESHOLDS = [0.3, 0.5, 0.7, 0.9];

export interface IntruderStudy {
  settings: IntruderStudySettings;
  style: string;
  /** Validation loss before training, after the full fine-tune, after LoRA. */
  loss: { base: number; full: number; lora: number };
  rows: IntruderStudyRow[];
}

const BATCH = 4;
const WARMUP = 2;

/** The full fine-tune: the modules' weights as f32 parameters, the rest of the model frozen. */
async function fullFineTune(
  gpu: Gpu,
  base: Transformer,
  paths: readonly string[],
  train: readonly Sequence[],
  s: IntruderStudySettings,
): Promise<Map<string, Tensor>> {
  const tuned = new Map<string, Tensor>();
  const grads = new Map<string, Tensor>();
  for (const path of paths) {
    const w = base.weight(`${path}.weight`);
    tuned.set(path, await run(gpu, (b) => asF32(b, w)));
    grads.set(path, createTensor(gpu, w.shape, 'f32', `${path} ∂L/∂W`));
  }
  const view: Transformer = {
    ...base,
    weight: (name) => tuned.get(name.replace(/\.weight$/, '')) ?? base.weight(name),
  };
  const optimizer = new AdamW(
    gpu,
    paths.map((path) => ({
      name: path,
      value: tuned.get(path) as Tensor,
      grad: grads.get(path) as Tensor,
    })),
  );
  try {
    for (let step = 0; step < s.steps; step++) {
      const batch = tokenBatch(
        Array.from(
          { length: BATCH },
          (_, i) => train[sequenceAt(train.length, 0, step * BATCH + i)],
        ),
      );
      await batchLoss(gpu, view, batch, {
        grads: new Map(),
        accumulate: false,
        gradScale: 1 / scoredCount(batch.targets),
        observe: (b, path, g, x) => {
          const into = grads.get(path);
          if (into) matmul(b, g, x, { transA: true, into });
        },
      });
      const { norm } = await optimizer.gradients();
      const lr = learningRate(step, {
        schedule: 'cosine',
        lr: s.fullLr,
        warmupSteps: WARMUP,
        totalSteps: s.steps,
      });
      const { adamBeta1, adamBeta2, adamEpsilon } = DEFAULT_SETTINGS;
      await optimizer.step(
        { lr, beta1: adamBeta1, beta2: adamBeta2, eps: adamEpsilon, weightDecay: 0 },
        norm > 1 ? 1 / norm : 1,
      );
    }
    return tuned;
  } catch (e) {
    releaseTensor(gpu, ...tuned.values());
    throw e;
  } finally {
    optimizer.dispose();
    releaseTensor(gpu, ...grads.values());
  }
}

export async function intruderStudy(
  gpu: Gpu,
  model: GpuModel,
  tokenizer: TextTokenizer,
  style: StyleCorpus,
  s: IntruderStudySettings,
  log: (line: string) => void = () => undefined,
): Promise<IntruderStudy> {
  const options = { seqLen: 64, validationFraction: 0.1, seed: 0 };
  const data = prepareDataset(style.stories(120, 1), `${style.name}.txt`, tokenizer, options);
  const lora: LoraSpec = {
    rank: s.rank,
    alpha: 2 * s.rank,
    rslora: false,
    targets: TARGET_PRESETS['all-linear'],
    dropout: 0,
    init: 'lora',
  };
  const paths = adaptedModules(model.config, lora).map((m) => m.path);
  const validation = (t: Transformer) =>
    meanLoss(batchedScorer(gpu, t, BATCH), data.validation).then((r) => r?.loss ?? NaN);
  const base = model.base;
  const baseLoss = await validation(base);

  log(`full fine-tune of ${paths.length} modules (${s.steps} steps, lr ${s.fullLr})`);
  const tuned = await fullFineTune(gpu, base, paths, data.train, s);
  const rows: IntruderStudyRow[] = [];
  let fullLoss: number;
  try {
    fullLoss = await validation({
      ...base,
      weight: (name) => tuned.get(name.replace(/\.weight$/, '')) ?? base.weight(name),
    });
    for (const path of paths) {
      const w0 = await run(gpu, (b) => asF32(b, base.weight(`${path}.weight`)));
      try {
        const { similarities } = await intrusion(
          gpu,
          w0,
          tuned.get(path) as Tensor,
          INTRUDER_DEFAULTS,
        );
        rows.push({ path, full: similarities, lora: [] });
      } finally {
        releaseTensor(gpu, w0);
      }
    }
  } finally {
    releaseTensor(gpu, ...tuned.values());
  }

  log(`LoRA rank ${s.rank} on the same modules (${s.steps} steps, lr ${s.loraLr})`);
  const result = await train({
    gpu,
    model,
    baseModel: 'stories260K',
    data,
    config: {
      lora,
      train: {
        ...DEFAULT_SETTINGS,
        steps: s.steps,
        lr: s.loraLr,
        batchSize: BATCH,
        warmupSteps: WARMUP,
        evalEvery: 0,
        checkpointEvery: 0,
      },
    },
  });
  let loraLoss: number;
  try {
    loraLoss = await validation(result.adapter.view(base));
    const { files } = await result.adapter.peftFiles('stories260K', model.config);
    const intrusions = await adapterIntrusions(gpu, base, readPeftAdapter(files, 'lora'));
    for (const m of intrusions) {
      const row = rows.find((r) => r.path === m.path);
      if (row) row.lora = m.similarities;
    }
  } finally {
    result.adapter.dispose();
  }
  return {
    settings: s,
    style: style.name,
    loss: { base: baseLoss, full: fullLoss, lora: loraLoss },
    rows,
  };
}

/** The study as markdown: losses and intruder totals by ε, then each module's closest call. */
export function intruderTables(study: IntruderStudy): string {
  const { k } = INTRUDER_DEFAULTS;
  const f3 = (x: number) => x.toFixed(3);
  const f2 = (x: number) => x.toFixed(2);
  const count = (key: 'full' | 'lora', threshold: number) =>
    study.rows.reduce((n, r) => n + r[key].filter((s) => s < threshold).length, 0);
  const types = [...new Set(study.rows.map((r) => r.path.split('.').at(-1) ?? ''))];
  const layers = [...new Set(study.rows.map((r) => Number(/\.(\d+)\./.exec(r.path)?.[1])))];
  const cell = (layer: number, type: string) => {
    const row = study.rows.find(
      (r) => r.path.includes(`.${layer}.`) && r.path.endsWith(`.${type}`),
    );
    return row ? `${f2(Math.min(...row.full))} / ${f2(Math.min(...row.lora))}` : '';
  };
  const { steps, fullLr, rank, loraLr } = study.settings;
  return [
    `| ${study.style}, ${steps} steps | validation loss | ${STUDY_THRESHOLDS.map((e) => `intruders, ε = ${e}`).join(' | ')} |`,
    `|---|---|${STUDY_THRESHOLDS.map(() => '---|').join('')}`,
    `| base model | ${f3(study.loss.base)} | ${STUDY_THRESHOLDS.map(() => '').join(' | ')} |`,
    `| full fine-tune, lr ${fullLr} | ${f3(study.loss.full)} | ${STUDY_THRESHOLDS.map((e) => count('full', e)).join(' | ')} |`,
    `| LoRA rank ${rank}, lr ${loraLr} | ${f3(study.loss.lora)} | ${STUDY_THRESHOLDS.map((e) => count('lora', e)).join(' | ')} |`,
    '',
    `The lowest best-match |cos| among each module's top ${k} singular vectors, full fine-tune / LoRA:`,
    '',
    `| layer | ${types.join(' | ')} |`,
    `|---|${types.map(() => '---|').join('')}`,
    ...layers.map((l) => `| ${l} | ${types.map((t) => cell(l, t)).join(' | ')} |`),
  ].join('\n');
}
