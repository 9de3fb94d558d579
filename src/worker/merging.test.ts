// Merging through the Studio API: two adapters trained in the studio on the two invented styles,
// compared, baked into library adapters by spec, and measured by the merge report and sweep.
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryLibrary } from '../adapters/library.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { fixture } from '../testing/fixtures.ts';
import { memoryRunStore } from '../train/run-store.ts';
import { DEFAULT_SETTINGS } from '../train/settings.ts';
import { SNORP_STYLE, ZIMMY_STYLE, type StyleCorpus } from '../train/style-corpus.ts';
import type { StudioApi } from './api.ts';
import { createStudio } from './studio.ts';

describe('merging through the studio API', () => {
  let studio: StudioApi;
  const ids: string[] = [];

  async function trainStyle(style: StyleCorpus): Promise<string> {
    await studio.prepareData(style.stories(24, 1), `${style.name}.txt`, {
      seqLen: 64,
      validationFraction: 0,
      seed: 1,
    });
    const outcome = await studio.startTraining({
      lora: {
        rank: 4,
        alpha: 8,
        rslora: false,
        targets: ['q_proj', 'v_proj', 'down_proj'],
        dropout: 0,
        init: 'lora',
      },
      train: {
        ...DEFAULT_SETTINGS,
        steps: 6,
        lr: 2e-2,
        batchSize: 4,
        warmupSteps: 0,
        evalEvery: 0,
        checkpointEvery: 0,
      },
    });
    return outcome.adapterId ?? '';
  }

  beforeAll(async () => {
    studio = createStudio({
      gpu: nodeGpuEntry(),
      shaders: nodeShaders,
      secureContext: true,
      tuningStore: { load: () => Promise.resolve(undefined), save: () => Promise.resolve() },
      runStore: memoryRunStore(),
      library: memoryLibrary(),
      builtinModel: () =>
        Promise.resolve({
          checkpoint: fixture('models/llama2c/stories260K.bin'),
          tokenizer: fixture('models/llama2c/tok512.bin'),
        }),
    });
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    for (const style of [ZIMMY_STYLE, SNORP_STYLE]) ids.push(await trainStyle(style));
  }, 120_000);

  it('bakes a spec into a library adapter with its recipe and model card', async () => {
    const progress: number[] = [];
    const { item, lostEnergy } = await studio.merge(
      {
        method: 'ties_svd',
        adapters: [
          { id: ids[0], weight: 1 },
          { id: ids[1], weight: 0.5 },
        ],
        density: 0.5,
        rank: 4,
      },
      'zimmy-snorp',
      (done) => progress.push(done),
    );
    expect(item).toMatchObject({ name: 'zimmy-snorp', baseModel: 'stories260K (built-in)' });
    expect(item.origin).toMatch(/^merged: ties_svd of /);
    expect(item.details).toMatchObject({ rank: 4, modules: 15 });
    expect(item.files.sort()).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
      'merge_recipe.json',
    ]);
    expect(progress.at(-1)).toBe(15);
    expect(lostEnergy).toBeGreaterThan(0);
    const files = await studio.adapterFiles(item.id);
    const recipe = JSON.parse(
      new TextDecoder().decode(files.find((f) => f.name === 'merge_recipe.json')?.bytes),
    ) as { spec: { adapters: { id: string }[]; seed: number } };
    expect(recipe.spec.adapters.map((a) => a.id)).toEqual(ids);
    expect(recipe.spec.seed).toBe(0);
    // The merged adapter applies like any other.
    await studio.applyAdapters([{ id: item.id, weight: 1 }]);
    await studio.applyAdapters([]);
  });

  it('cancels a running bake at its next module, and the next job runs normally', async () => {
    const spec = {
      method: 'ties_svd' as const,
      adapters: ids.map((id) => ({ id, weight: 1 })),
      rank: 4,
    };
    const done: number[] = [];
    const baking = studio.merge(spec, 'cancelled', (d) => {
      done.push(d);
      if (d === 2) void studio.cancelMergeJob();
    });
    await expect(baking).rejects.toThrow(/^Cancelled\.$/);
    expect(done).toEqual([1, 2]);
    expect((await studio.listAdapters()).some((i) => i.name === 'cancelled')).toBe(false);
    const { item } = await studio.merge(spec, 'after');
    expect(item.name).toBe('after');
  });

  it('compares adapters: itself 1, the two styles less alike', async () => {
    const comparison = await studio.compare([ids[0], ids[1], ids[0]]);
    expect(comparison.similarity[0][2]).toBeCloseTo(1, 5);
    expect(Math.abs(comparison.similarity[0][1])).toBeLessThan(0.9);
    expect(comparison.modules).toHaveLength(15);
  });

  it('reports the merge on both eval texts and sweeps the weight', async () => {
    const { item } = await studio.merge(
      { method: 'cat', adapters: ids.map((id) => ({ id, weight: 1 })) },
      'both',
    );
    const texts = [
      { id: ids[0], text: ZIMMY_STYLE.stories(4, 2) },
      { id: ids[1], text: SNORP_STYLE.stories(4, 2) },
    ];
    const report = await studio.mergeReport(item.id, texts);
    expect(report.rows).toHaveLength(2);
    for (const row of report.rows) {
      expect(row.adapters[row.source].loss).toBeLessThan(row.base.loss);
      expect(row.kept).not.toBeNull();
    }
    const sweep = await studio.weightSweep(texts, [0, 1]);
    const zimmy = report.rows[0].source;
    expect(sweep[0].losses[zimmy].loss).toBeCloseTo(report.rows[0].base.loss, 5);
    expect(sweep[1].losses[zimmy].loss).toBeCloseTo(report.rows[0].merged.loss, 4);
    await expect(studio.mergeReport(item.id, [{ id: ids[0], text: '' }])).rejects.toThrow(
      /eval text for .* is empty/,
    );
  });
});
