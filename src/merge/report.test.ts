// The merge report on real adapters: stories260K fine-tuned briefly on each of the two invented
// styles (src/studies/style-corpus.ts), merged exactly by `cat` at weights 1, 1, and measured on
// held-out stories of each style.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterTerms, type PeftAdapter } from '../adapters/peft-read.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { createGpuModel, type GpuModel } from '../model/forward.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c } from '../model/tokenizer.ts';
import { builtIn } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { trainStyleAdapter } from '../studies/style-adapter.ts';
import { SNORP_STYLE, ZIMMY_STYLE, type StyleCorpus } from '../studies/style-corpus.ts';
import { batchedScorer, meanLoss } from '../train/evaluate.ts';
import { gpuCompute } from './compute.ts';
import { mergeAdapters } from './merge.ts';
import {
  cpuEvaluator,
  evalSequences,
  gpuEvaluator,
  mergeReport,
  peftAdapterOf,
  weightSweep,
  type MergeReport,
  type ReportSource,
  type SweepPoint,
} from './report.ts';

const gpu = useGpu();
const SEQ_LEN = 64;
const PROBE = 'model.layers.0.self_attn.q_proj';

const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
const tokenizer = fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin'));

/** Ten steps of a rank-4 LoRA on one style. */
const trainStyle = (model: GpuModel, style: StyleCorpus) =>
  trainStyleAdapter(gpu(), model, config, tokenizer, style, {
    steps: 10,
    rank: 4,
    lr: 1e-2,
    seqLen: SEQ_LEN,
    stories: 60,
  });

/** The loss with `adapter` applied to the model itself, as the playground applies it. */
async function appliedLoss(model: GpuModel, source: ReportSource) {
  const applied = await adapterTerms(gpu(), model.base, [{ adapter: source.adapter, weight: 1 }]);
  model.setAdapters(applied.terms, applied.overrides);
  const loss = await meanLoss(batchedScorer(gpu(), model.transformer, 4), source.evalTokens);
  return { loss: loss?.loss ?? NaN, tensors: applied.tensors };
}

describe('merge report of two styles merged by cat at weights 1, 1', () => {
  let model: GpuModel;
  let sources: ReportSource[];
  let merged: PeftAdapter;
  let report: MergeReport;
  let sweep: SweepPoint[];
  const progress: [number, number][] = [];
  let direct: Record<string, number>;
  let appliedKept = false;

  beforeAll(async () => {
    model = createGpuModel(gpu(), config, weights);
    sources = [];
    for (const style of [ZIMMY_STYLE, SNORP_STYLE]) {
      const adapter = await trainStyle(model, style);
      // Stories the training never saw (another seed).
      const evalTokens = evalSequences(tokenizer, style.stories(6, 2), 'held-out.txt', SEQ_LEN);
      sources.push({ name: style.name, adapter, evalTokens });
    }
    const { adapter: cat } = await mergeAdapters(
      gpuCompute(gpu()),
      sources.map(({ adapter }) => adapter),
      { method: 'cat', adapters: sources.map(({ name }) => ({ id: name, weight: 1 })) },
    );
    const zimmyApplied = await appliedLoss(model, sources[0]);
    releaseTensor(gpu(), ...zimmyApplied.tensors);
    // The Snorp adapter stays applied to the model while the report runs, as a user's would.
    const snorpApplied = await appliedLoss(model, sources[1]);
    const probe = model.transformer.adapterTerms(PROBE);
    merged = peftAdapterOf(cat, 'both');
    report = await mergeReport(gpuEvaluator(gpu(), model.base), sources, merged, {
      onProgress: (done, total) => progress.push([done, total]),
    });
    appliedKept = model.transformer.adapterTerms(PROBE) === probe;
    model.setAdapters(new Map());
    releaseTensor(gpu(), ...snorpApplied.tensors);
    direct = { Zimmy: zimmyApplied.loss, Snorp: snorpApplied.loss };
    sweep = await weightSweep(gpuEvaluator(gpu(), model.base), sources, [0, 1]);
  }, 120_000);
  afterAll(() => {
    model.dispose();
  });

  it('has one JSON-serialisable row per source, counting tokens and reporting progress', () => {
    expect(JSON.parse(JSON.stringify({ report, sweep }))).toEqual({ report, sweep });
    expect(report.merged).toBe('both');
    expect(report.rows.map((r) => r.source)).toEqual(['Zimmy', 'Snorp']);
    for (const [i, row] of report.rows.entries()) {
      const targets = sources[i].evalTokens.flatMap((s) => [...s.target].filter((t) => t >= 0));
      expect(row.tokens).toBe(targets.length);
      expect(row.merged.perplexity).toBeCloseTo(Math.exp(row.merged.loss), 9);
    }
    // (2 sources + base + merge) × 2 eval texts, after every one of them.
    expect(progress).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map((done) => [done, 8]));
  });

  it('shows each source beating the base on its own style', () => {
    for (const row of report.rows) {
      const own = row.adapters[row.source].loss;
      const change = `${row.source}: base ${row.base.loss.toFixed(3)} → ${own.toFixed(3)}`;
      expect(own, change).toBeLessThan(row.base.loss - 0.3);
    }
  });

  it('shows the merge keeping a positive share of both improvements', () => {
    for (const row of report.rows) {
      const own = row.adapters[row.source].loss;
      expect(row.kept, `${row.source}: merged ${row.merged.loss.toFixed(3)}`).toBeGreaterThan(0);
      expect(row.kept).toBeCloseTo((row.base.loss - row.merged.loss) / (row.base.loss - own), 12);
    }
  });

  it('gives each source the loss of its adapter applied to the model, and leaves it applied', () => {
    for (const row of report.rows)
      expect(row.adapters[row.source].loss, row.source).toBeCloseTo(direct[row.source], 5);
    expect(appliedKept).toBe(true);
  });

  it('sweeps from the base (weight 0) to the plain sum that cat merged (weight 1)', () => {
    expect(sweep.map((p) => p.weight)).toEqual([0, 1]);
    for (const row of report.rows) {
      const [atZero, atOne] = sweep.map((p) => p.losses[row.source].loss);
      expect(atZero, row.source).toBeCloseTo(row.base.loss, 5);
      expect(atOne, row.source).toBeCloseTo(row.merged.loss, 4);
      expect(atOne, row.source).toBeLessThan(atZero - 0.1);
    }
  });

  it('is the same on the CPU references (no WebGPU), composing adapters into the weights', async () => {
    const onCpu = await mergeReport(cpuEvaluator(config, weights), sources, merged);
    onCpu.rows.forEach((row, i) => {
      const gpuRow = report.rows[i];
      expect(row.tokens).toBe(gpuRow.tokens);
      for (const [cpuCell, gpuCell] of [
        [row.base, gpuRow.base],
        [row.merged, gpuRow.merged],
        ...sources.map((s) => [row.adapters[s.name], gpuRow.adapters[s.name]]),
      ])
        expect(cpuCell.loss, row.source).toBeCloseTo(gpuCell.loss, 4);
    });
  });
});
