// The training loop: seeded batches of packed sequences, gradient accumulation, AdamW with
// clipping and a schedule (optionally on LoRA-Pro's corrected gradients), evaluation and sample
// generations every N steps, checkpoints that resume the same run exactly, and a stop with a
// report where the loss or a gradient goes non-finite (the adapter keeps its last good values:
// the bad update is never applied).
import { adaptedModules } from '../adapters/config.ts';
import { initEntry } from '../adapters/inits.ts';
import { PLAIN_VARIANT, variantEntry } from '../adapters/variants.ts';
import type { TrainedFactors } from '../adapters/peft.ts';
import type { Gpu } from '../gpu/device.ts';
import { createRunner, type GpuModel } from '../model/forward.ts';
import { generateAll } from '../model/generate.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import type { Transformer } from '../model/transformer.ts';
import { sequenceAt, type PreparedData, type Sequence } from './data.ts';
import { loraProGradients } from './lora-pro.ts';
import { AdamW, clipFactor } from './optimizer.ts';
import { learningRate } from './schedule.ts';
import { withDefaultSettings, type TrainConfig, type TrainSettings } from './settings.ts';

export { DEFAULT_SETTINGS, type TrainConfig, type TrainSettings } from './settings.ts';
import { batchedScorer, meanLoss, scoredCount } from './evaluate.ts';
import { batchLoss, firstNonFinite, tokenBatch, type TokenBatch } from './step.ts';
import { initStatistics } from './statistics.ts';
import { TrainableAdapter } from './trainable.ts';

export interface HistoryPoint {
  step: number;
  loss?: number;
  valLoss?: number;
  lr?: number;
  gradNorm?: number;
  /** SORSA: how far B and A are from orthonormal (mean ‖BᵀB − I‖_F, ‖A·Aᵀ − I‖_F) before the step. */
  orthonormality?: number;
}

export interface Sample {
  prompt: string;
  text: string;
}

/**
 * What the loop reports. `tokensPerSecond` and `etaSeconds` are measured over training steps;
 * initialisation and evaluation events carry 0 for both (keep the last step's figures).
 */
export interface TrainProgress {
  phase: 'initialising' | 'training' | 'evaluating' | 'paused';
  step: number;
  totalSteps: number;
  /** The point this event adds to the curves, if any. */
  point?: HistoryPoint;
  tokensPerSecond: number;
  etaSeconds: number;
  gpuBytes: number;
  samples?: Sample[];
  /** What is happening, in words (initialisation of a module, say). */
  message?: string;
}

/** Everything needed to continue a run exactly where it was. */
export interface Checkpoint {
  version: 1;
  baseModel: string;
  config: TrainConfig;
  /** Optimiser steps done. */
  step: number;
  history: HistoryPoint[];
  /** A, B and the variant's vectors (DoRA's magnitudes) of every module. */
  factors: Record<string, TrainedFactors>;
  /** AdamW moments in the order of TrainableAdapter.parameters(). */
  moments: { m: Float32Array; v: Float32Array }[];
  /** Training tokens processed and wall time spent so far (for throughput across resumes). */
  tokens: number;
  elapsedMs: number;
  /** What the run was trained on, recorded by its caller so that a resume can check it. */
  data?: DataIdentity;
}

/** The training data of a run: its bytes' hash and how it was cut into sequences. */
export interface DataIdentity {
  file: string;
  sha256: string;
  seqLen: number;
  validationFraction: number;
  /** Resumes forced onto other data: from which step, and that data's hash. */
  replaced?: { step: number; sha256: string }[];
}

export interface CheckpointStore {
  save(checkpoint: Checkpoint): Promise<void>;
}

/** Pause, resume and stop from outside the loop (the worker API, the CLI's signals). */
export class TrainControl {
  private stopping = false;
  private pausedUntil: { promise: Promise<void>; release: () => void } | null = null;

  pause(): void {
    if (this.pausedUntil) return;
    let release: () => void = () => undefined;
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.pausedUntil = { promise, release };
  }

  resume(): void {
    this.pausedUntil?.release();
    this.pausedUntil = null;
  }

  stop(): void {
    this.stopping = true;
    this.resume();
  }

  get paused(): boolean {
    return this.pausedUntil !== null;
  }

  /** Waits while paused; true when the run should stop. */
  async gate(onPause: () => void): Promise<boolean> {
    if (this.pausedUntil) {
      onPause();
      await this.pausedUntil.promise;
    }
    return this.stopping;
  }
}

export interface TrainResult {
  status: 'done' | 'stopped' | 'failed';
  /** Why a run failed (non-finite loss or gradients), naming the step and the tensors. */
  failure?: string;
  steps: number;
  history: HistoryPoint[];
  trainLossFirst: number;
  trainLossLast: number;
  valLossFirst: number | null;
  valLossLast: number | null;
  tokensPerSecond: number;
  samples: Sample[];
  /** The trained adapter on the GPU; the caller disposes it. */
  adapter: TrainableAdapter;
}

export interface TrainRun {
  gpu: Gpu;
  model: GpuModel;
  baseModel: string;
  data: PreparedData;
  config: TrainConfig;
  tokenizer?: TextTokenizer;
  onProgress?: (p: TrainProgress) => void;
  control?: TrainControl;
  store?: CheckpointStore;
  resumeFrom?: Checkpoint;
}

const INITIALISING = { phase: 'initialising', step: 0, tokensPerSecond: 0, etaSeconds: 0 } as const;

/** What the data-aware inits read: the first training sequences, in order (reproducible). */
function initBatches(
  sequences: readonly Sequence[],
  batchSize: number,
  count: number,
): TokenBatch[] {
  const batches: TokenBatch[] = [];
  for (let i = 0; i < sequences.length && batches.length < count; i += batchSize)
    batches.push(tokenBatch(sequences.slice(i, i + batchSize)));
  return batches;
}

async function sampleTexts(
  gpu: Gpu,
  view: Transformer,
  tokenizer: TextTokenizer,
  prompts: readonly string[],
  maxNewTokens: number,
  seed: number,
): Promise<Sample[]> {
  const runner = createRunner(gpu, view);
  try {
    const samples: Sample[] = [];
    for (const prompt of prompts) {
      const ids = tokenizer.encode(prompt);
      const prefix = ids.length > 0 ? ids : tokenizer.bosId === null ? [] : [tokenizer.bosId];
      if (prefix.length === 0) continue;
      const out = await generateAll(runner, prefix, {
        maxNewTokens,
        temperature: 0.8,
        topP: 0.95,
        seed,
      });
      samples.push({
        prompt,
        text: tokenizer.decode([...prefix, ...out], { skipSpecialTokens: true }),
      });
    }
    return samples;
  } finally {
    runner.dispose();
  }
}

function checkSettings({ lora, train: s }: TrainConfig, data: PreparedData): void {
  const problems: string[] = [];
  const counts: [number, string][] = [
    [s.steps, 'steps'],
    [s.batchSize, 'batch size'],
    [s.gradAccum, 'gradient accumulation'],
  ];
  for (const [value, name] of counts)
    if (!(Number.isInteger(value) && value >= 1))
      problems.push(`${name} must be a whole number ≥ 1`);
  if (!(s.lr > 0 && Number.isFinite(s.lr))) problems.push('the learning rate must be positive');
  if (!(s.warmupSteps >= 0 && s.warmupSteps <= s.steps))
    problems.push(`warmup steps must be between 0 and the number of steps (${s.steps})`);
  for (const [value, name] of [
    [s.adamBeta1, 'adam_beta1'],
    [s.adamBeta2, 'adam_beta2'],
  ] as const)
    if (!(value >= 0 && value < 1)) problems.push(`${name} must be in [0, 1)`);
  if (!(s.adamEpsilon > 0 && Number.isFinite(s.adamEpsilon)))
    problems.push('adam_epsilon must be positive');
  if (data.train.length === 0) problems.push('there are no training sequences');
  const init = initEntry(lora.init);
  const trainsCore = init.trains.includes('diagonal') || init.trains.includes('core');
  if (s.loraPro && !(init.trains.includes('a') && init.trains.includes('b')))
    problems.push(
      `LoRA-Pro corrects the gradients of both factors, and ${init.shortName} freezes ${init.trains.includes('a') ? 'B' : 'A'}`,
    );
  else if (s.loraPro && trainsCore)
    problems.push(`LoRA-Pro corrects B·A, and ${init.shortName} trains a core between them`);
  if (!(s.orthonormalWeight >= 0 && Number.isFinite(s.orthonormalWeight)))
    problems.push('the orthonormal regulariser’s weight must be ≥ 0');
  if (trainsCore && variantEntry(lora.variant).name !== PLAIN_VARIANT)
    problems.push(
      `${init.shortName} trains a core between B and A, which ${variantEntry(lora.variant).shortName} does not take`,
    );
  if (lora.dylora) {
    const variant = variantEntry(lora.variant);
    if (variant.name !== PLAIN_VARIANT)
      problems.push(`DyLoRA trains plain LoRA's nested ranks, not ${variant.shortName}`);
    if (init.mutatesBase)
      problems.push(
        `DyLoRA cuts the adapter to a prefix of its ranks, and ${init.shortName} exports as a plain LoRA of twice the rank whose prefixes mean nothing`,
      );
    if (s.loraPro) problems.push('DyLoRA and LoRA-Pro do not combine');
    if (trainsCore) problems.push(`DyLoRA truncates the factors ${init.shortName} keeps frozen`);
  }
  if (problems.length > 0) throw new RangeError(`Training settings: ${problems.join('; ')}.`);
}

type Emit = (p: Omit<TrainProgress, 'totalSteps' | 'gpuBytes'>) => void;

/** A run under way: what it trains, and how far it got (what a checkpoint saves). */
interface RunState {
  readonly r: TrainRun;
  readonly config: TrainConfig;
  readonly adapter: TrainableAdapter;
  readonly optimizer: AdamW;
  /** The model as training sees it (residual weights, the adapter on its modules). */
  readonly view: Transformer;
  readonly emit: Emit;
  /** Optimiser steps done. */
  step: number;
  tokens: number;
  elapsedMs: number;
  history: HistoryPoint[];
  /** The last evaluation's generations. */
  samples: Sample[];
}

/** The adapter as its init starts it, after reading the data where the init needs to. */
async function initialAdapter(
  r: TrainRun,
  config: TrainConfig,
  emit: Emit,
): Promise<TrainableAdapter> {
  const { gpu, model } = r;
  const { lora, train: s } = config;
  const entry = initEntry(lora.init);
  let statistics: Awaited<ReturnType<typeof initStatistics>> | undefined;
  if (entry.statistic !== 'none') {
    emit({
      ...INITIALISING,
      message: `reading the data for ${lora.init} (up to ${entry.batches} batches)`,
    });
    const batches = initBatches(r.data.train, s.batchSize, entry.batches);
    const modules = adaptedModules(model.base.config, lora);
    statistics = await initStatistics(gpu, model.base, batches, modules, entry.statistic, s.seed);
  }
  try {
    return await TrainableAdapter.create(
      gpu,
      model.base,
      lora,
      s.seed,
      (done, total, path) => {
        emit({
          ...INITIALISING,
          message: path
            ? `initialising ${path} (${done + 1}/${total})`
            : `initialised ${total} adapted modules (${lora.init})`,
        });
      },
      statistics?.statistics,
    );
  } finally {
    statistics?.release();
  }
}

/** Checks the settings, initialises the adapter and its optimiser, and restores a checkpoint. */
async function prepare(r: TrainRun): Promise<RunState> {
  // A checkpoint saved before a setting existed runs with the value it had then: its default.
  const config = { ...r.config, train: withDefaultSettings(r.config.train) };
  const s = config.train;
  checkSettings(config, r.data);
  const emit: Emit = (p) =>
    r.onProgress?.({ ...p, totalSteps: s.steps, gpuBytes: r.gpu.pool.allocatedBytes });
  const adapter = await initialAdapter(r, config, emit);
  const optimizer = new AdamW(r.gpu, adapter.parameters());
  try {
    const c = r.resumeFrom;
    if (c) {
      adapter.write(new Map(Object.entries(c.factors)));
      optimizer.restore(c.step, c.moments);
      await adapter.refresh();
    }
    return {
      r,
      config,
      adapter,
      optimizer,
      view: adapter.view(r.model.base),
      emit,
      step: c?.step ?? 0,
      tokens: c?.tokens ?? 0,
      elapsedMs: c?.elapsedMs ?? 0,
      history: c ? [...c.history] : [],
      samples: [],
    };
  } catch (e) {
    optimizer.dispose();
    adapter.dispose();
    throw e;
  }
}

/** The micro-batches of one optimiser step: a seeded draw, so a resumed run takes the same. */
function stepBatches(sequences: readonly Sequence[], s: TrainSettings, step: number): TokenBatch[] {
  return Array.from({ length: s.gradAccum }, (_, j) =>
    tokenBatch(
      Array.from({ length: s.batchSize }, (_, i) => {
        const pos = (step * s.gradAccum + j) * s.batchSize + i;
        return sequences[sequenceAt(sequences.length, s.seed, pos)];
      }),
    ),
  );
}

/**
 * One optimiser step: the loss and gradients over the micro-batches, clipping, LoRA-Pro's
 * correction, AdamW. Returns the step's point, or why the run fails (nothing is applied then).
 */
async function trainStep(run: RunState): Promise<HistoryPoint | { failure: string }> {
  const { r, adapter, optimizer, view, step } = run;
  const { lora, train: s } = run.config;
  // Timed from here: pauses and evaluations do not count as training time.
  const started = performance.now();
  const micro = stepBatches(r.data.train, s, step);
  const count = micro.reduce((n, b) => n + scoredCount(b.targets), 0);
  // One dropout seed per micro-batch of the run: a resumed run draws the same masks.
  const dropoutSeedAt = (j: number) =>
    lora.dropout > 0 ? (s.seed * 1_000_003 + step * s.gradAccum + j) >>> 0 : undefined;
  let lossSum = 0;
  await adapter.startStep(s.seed, step);
  for (const [j, batch] of micro.entries()) {
    lossSum += await batchLoss(r.gpu, view, batch, {
      grads: adapter.backwardGrads,
      accumulate: j > 0,
      gradScale: 1 / count,
      dropoutSeed: dropoutSeedAt(j),
      recompute: s.recompute,
    });
  }
  await adapter.finishGradients();
  const orthonormality = initEntry(lora.init).orthonormal
    ? await adapter.regulariseOrthonormal(s.orthonormalWeight)
    : undefined;
  const kept = `(the adapter keeps its values from step ${step})`;
  const loss = lossSum / count;
  if (!Number.isFinite(loss)) {
    const where = await firstNonFinite(r.gpu, view, micro[0], dropoutSeedAt(0));
    const origin = where ? `; the first non-finite values come from ${where}` : '';
    return { failure: `step ${step + 1}: the training loss became ${loss}${origin} ${kept}` };
  }
  const grads = await optimizer.gradients();
  if (grads.nonFinite.length > 0) {
    const named = grads.nonFinite.slice(0, 3).join(', ');
    const more = grads.nonFinite.length > 3 ? ` and ${grads.nonFinite.length - 3} more` : '';
    return { failure: `step ${step + 1}: non-finite gradients in ${named}${more} ${kept}` };
  }
  const lr = learningRate(step, {
    schedule: s.schedule,
    lr: s.lr,
    warmupSteps: s.warmupSteps,
    totalSteps: s.steps,
  });
  // The norm reported and clipped is the plain gradients' (the correction is linear).
  if (s.loraPro) await loraProGradients(r.gpu, adapter.factorsWithGradients());
  await optimizer.step(
    {
      lr,
      beta1: s.adamBeta1,
      beta2: s.adamBeta2,
      eps: s.adamEpsilon,
      weightDecay: s.weightDecay,
    },
    clipFactor(grads.norm, s.maxGradNorm),
  );
  await adapter.refresh();
  run.step++;
  run.tokens += s.gradAccum * s.batchSize * r.data.train[0].input.length;
  run.elapsedMs += performance.now() - started;
  return {
    step: run.step,
    loss,
    lr,
    gradNorm: grads.norm,
    ...(orthonormality === undefined ? {} : { orthonormality }),
  };
}

/** Training tokens per second over the steps so far. */
function throughput(run: RunState): number {
  return run.elapsedMs > 0 ? (run.tokens * 1000) / run.elapsedMs : 0;
}

/** The validation loss (null without validation data), and sample generations where asked. */
async function evaluate(run: RunState): Promise<number | null> {
  const { r, view } = run;
  const s = run.config.train;
  run.emit({ phase: 'evaluating', step: run.step, tokensPerSecond: 0, etaSeconds: 0 });
  const valLoss =
    (
      await meanLoss(
        batchedScorer(r.gpu, view, s.batchSize),
        r.data.validation.slice(0, s.evalSequences),
      )
    )?.loss ?? null;
  if (r.tokenizer && s.samplePrompts.length > 0)
    run.samples = await sampleTexts(
      r.gpu,
      view,
      r.tokenizer,
      s.samplePrompts,
      s.sampleTokens,
      s.seed,
    );
  return valLoss;
}

async function saveCheckpoint(run: RunState): Promise<void> {
  const { store, baseModel } = run.r;
  if (!store) return;
  const factors = Object.fromEntries(await run.adapter.read());
  await store.save({
    version: 1,
    baseModel,
    config: run.config,
    step: run.step,
    history: [...run.history],
    factors,
    moments: await run.optimizer.moments(),
    tokens: run.tokens,
    elapsedMs: run.elapsedMs,
  });
}

/** The curve's first point: the adapter as initialised, before any step. */
async function evaluateStart(run: RunState): Promise<void> {
  const valLoss = await evaluate(run);
  const point = { step: 0, ...(valLoss === null ? {} : { valLoss }) };
  run.history.push(point);
  run.emit({
    phase: 'training',
    step: 0,
    point,
    samples: run.samples,
    tokensPerSecond: 0,
    etaSeconds: 0,
  });
}

/** After a step: an evaluation when one is due, the point reported, a checkpoint when due. */
async function evaluateAndCheckpoint(run: RunState, point: HistoryPoint): Promise<void> {
  const { step } = run;
  const s = run.config.train;
  const evalNow = (s.evalEvery > 0 && step % s.evalEvery === 0) || step === s.steps;
  if (evalNow) {
    const valLoss = await evaluate(run);
    if (valLoss !== null) point.valLoss = valLoss;
  }
  run.history.push(point);
  run.emit({
    phase: 'training',
    step,
    point,
    samples: evalNow ? run.samples : undefined,
    tokensPerSecond: throughput(run),
    etaSeconds: ((s.steps - step) * run.elapsedMs) / step / 1000,
  });
  if ((s.checkpointEvery > 0 && step % s.checkpointEvery === 0) || step === s.steps)
    await saveCheckpoint(run);
}

function result(run: RunState, status: TrainResult['status'], failure?: string): TrainResult {
  const { history } = run;
  const losses = history.filter((h) => h.loss !== undefined).map((h) => h.loss as number);
  const valLosses = history.filter((h) => h.valLoss !== undefined).map((h) => h.valLoss as number);
  return {
    status,
    failure,
    steps: run.step,
    history,
    trainLossFirst: losses[0] ?? NaN,
    trainLossLast: losses[losses.length - 1] ?? NaN,
    valLossFirst: valLosses[0] ?? null,
    valLossLast: valLosses[valLosses.length - 1] ?? null,
    tokensPerSecond: throughput(run),
    samples: run.samples,
    adapter: run.adapter,
  };
}

export async function train(r: TrainRun): Promise<TrainResult> {
  const { control = new TrainControl() } = r;
  const run = await prepare(r);
  let status: TrainResult['status'] = 'done';
  let failure: string | undefined;
  try {
    if (run.step === 0) await evaluateStart(run);
    while (run.step < run.config.train.steps) {
      const stop = await control.gate(() => {
        run.emit({
          phase: 'paused',
          step: run.step,
          tokensPerSecond: throughput(run),
          etaSeconds: 0,
        });
      });
      if (stop) {
        status = 'stopped';
        break;
      }
      const outcome = await trainStep(run);
      if ('failure' in outcome) {
        ({ failure } = outcome);
        status = 'failed';
        break;
      }
      await evaluateAndCheckpoint(run, outcome);
    }
    if (status === 'stopped') await saveCheckpoint(run);
  } catch (e) {
    run.optimizer.dispose();
    run.adapter.dispose();
    throw e;
  }
  run.optimizer.dispose();
  return result(run, status, failure);
}
