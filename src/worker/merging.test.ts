// Merging through the Studio API: two adapters trained in the studio on the two invented styles,
// compared, baked into library adapters by spec, and measured by the merge report and sweep; then
// the same through a studio without WebGPU (on the CPU references), which must agree.
import { nodeStudio } from '../testing/studio.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryLibrary } from '../adapters/library.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { DEFAULT_SETTINGS } from '../train/settings.ts';
import { SNORP_STYLE, ZIMMY_STYLE, type StyleCorpus } from '../studies/style-corpus.ts';
import { TRAINING_NEEDS_WEBGPU, type StudioApi } from './api.ts';

/** ΔW = s·B·A of every module of a library adapter, dense, by module path. */
async function deltas(studio: StudioApi, id: string): Promise<Map<string, Float64Array>> {
  const files = await studio.adapterFiles(id);
  const adapter = readPeftAdapter(new Map(files.map((f) => [f.name, f.bytes])), id);
  const out = new Map<string, Float64Array>();
  for (const [path, m] of adapter.modules) {
    const rows = m.b.length / m.rank;
    const cols = m.a.length / m.rank;
    const d = new Float64Array(rows * cols);
    for (let o = 0; o < rows; o++)
      for (let j = 0; j < m.rank; j++)
        for (let i = 0; i < cols; i++)
          d[o * cols + i] += m.scale * m.b[o * m.rank + j] * m.a[j * cols + i];
    out.set(path, d);
  }
  return out;
}

describe('merging through the studio API', () => {
  let studio: StudioApi;
  const library = memoryLibrary();
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
    studio = nodeStudio({ gpu: nodeGpuEntry(), library });
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

  describe('without WebGPU, on the CPU references', () => {
    let cpu: StudioApi;
    const texts = () => [
      { id: ids[0], text: ZIMMY_STYLE.stories(4, 2) },
      { id: ids[1], text: SNORP_STYLE.stories(4, 2) },
    ];

    beforeAll(async () => {
      cpu = nodeStudio({ gpu: undefined, library });
      expect(await cpu.connect(() => undefined)).toMatchObject({
        state: 'cpu',
        reason: 'no-webgpu',
      });
      expect(await cpu.loadBuiltinModel()).toMatchObject({ where: 'cpu', weightDTypes: ['f32'] });
    });

    it('generates what the GPU generates, with and without an adapter applied', async () => {
      const greedy = { maxNewTokens: 40, temperature: 0 };
      for (const composition of [[], [{ id: ids[0], weight: 1 }], [{ id: ids[1], weight: -0.5 }]]) {
        const texts: string[] = [];
        for (const s of [studio, cpu]) {
          await s.applyAdapters(composition);
          texts.push((await s.generate('Once upon a time', greedy)).text);
        }
        expect(texts[1], JSON.stringify(composition)).toBe(texts[0]);
      }
      for (const s of [studio, cpu]) await s.applyAdapters([]);
      const [onGpu, onCpu] = [
        await studio.perplexity(texts()[0].text),
        await cpu.perplexity(texts()[0].text),
      ];
      expect(onCpu.loss).toBeCloseTo(onGpu.loss, 4);
    });

    it('merges, compares and reports as the GPU does', async () => {
      const spec = {
        method: 'ties_svd' as const,
        adapters: [
          { id: ids[0], weight: 1 },
          { id: ids[1], weight: 0.5 },
        ],
        density: 0.5,
        rank: 4,
      };
      const [onGpu, onCpu] = [await studio.merge(spec, 'gpu'), await cpu.merge(spec, 'cpu')];
      expect(onCpu.lostEnergy).toBeCloseTo(onGpu.lostEnergy, 3);
      const [gpuDeltas, cpuDeltas] = [
        await deltas(studio, onGpu.item.id),
        await deltas(cpu, onCpu.item.id),
      ];
      expect([...cpuDeltas.keys()]).toEqual([...gpuDeltas.keys()]);
      for (const [path, d] of gpuDeltas)
        expect(relativeNormError(cpuDeltas.get(path)!, d), path).toBeLessThan(1e-3);

      const [gpuComparison, cpuComparison] = [await studio.compare(ids), await cpu.compare(ids)];
      expect(cpuComparison.similarity[0][1]).toBeCloseTo(gpuComparison.similarity[0][1], 5);
      expect(cpuComparison.pairs[0].signConflict).toBeCloseTo(
        gpuComparison.pairs[0].signConflict!,
        3,
      );

      const [gpuReport, cpuReport] = [
        await studio.mergeReport(onGpu.item.id, texts()),
        await cpu.mergeReport(onGpu.item.id, texts()),
      ];
      cpuReport.rows.forEach((row, i) => {
        expect(row.base.loss).toBeCloseTo(gpuReport.rows[i].base.loss, 4);
        expect(row.merged.loss).toBeCloseTo(gpuReport.rows[i].merged.loss, 4);
      });
    });

    it('refuses to train, saying why', async () => {
      await cpu.prepareData(ZIMMY_STYLE.stories(8, 3), 'zimmy.txt', {
        seqLen: 64,
        validationFraction: 0,
        seed: 1,
      });
      await expect(
        cpu.startTraining({
          lora: { rank: 4, alpha: 8, rslora: false, targets: ['q_proj'], dropout: 0, init: 'lora' },
          train: { ...DEFAULT_SETTINGS, steps: 2 },
        }),
      ).rejects.toThrow(TRAINING_NEEDS_WEBGPU);
      await expect(cpu.selfCheck()).rejects.toThrow(/WebGPU/);
    });
  });
});
