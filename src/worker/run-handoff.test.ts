// The Train panel's "Export run for…" through the studio API, with real runs of the built-in
// model: the zip holds what `lora-studio export-run` writes for the run (data/, the engine's
// config with the run's rank, learning rate and steps, README.md), and the list the panel shows
// of what each engine cannot express is spellRun's. Finished runs (kept in the worker), stopped
// ones after a reload (the run store's) and runs saved before checkpoints recorded their data.
import { nodeStudio } from '../testing/studio.ts';
import { unzipSync } from 'fflate';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exportedDataset, jsonl } from '../handoff/dataset.ts';
import { exportRunFiles, spellRun } from '../handoff/export.ts';
import { handoffRun } from '../handoff/run.ts';
import { TARGET_NAMES, TARGETS, type TargetName } from '../handoff/targets.ts';
import { styleCorpus } from '../studies/style-corpus.ts';
import { memoryRunStore, type RunStore, type SavedRun } from '../train/run-store.ts';
import { DEFAULT_SETTINGS, type TrainConfig } from '../train/settings.ts';
import type { StudioApi } from './api.ts';
import { runName } from './run-handoff.ts';

/** A run store that also keeps every run saved to it, as the worker handed it over. */
function recordingStore(): RunStore & { saves: SavedRun[] } {
  const store = memoryRunStore();
  const saves: SavedRun[] = [];
  return {
    ...store,
    saves,
    save: (run) => {
      saves.push(structuredClone(run));
      return store.save(run);
    },
  };
}

async function studioWithModel(runStore: RunStore): Promise<StudioApi> {
  const studio = nodeStudio({ runStore });
  await studio.connect(() => undefined);
  await studio.loadBuiltinModel();
  return studio;
}

const config: TrainConfig = {
  lora: {
    rank: 4,
    alpha: 8,
    rslora: false,
    targets: ['q_proj', 'v_proj'],
    dropout: 0,
    init: 'lora',
  },
  train: {
    ...DEFAULT_SETTINGS,
    steps: 6,
    lr: 1e-2,
    batchSize: 2,
    warmupSteps: 1,
    evalEvery: 3,
    checkpointEvery: 3,
  },
};
// The Data panel's split seed, other than the run's (DEFAULT_SETTINGS.seed): the export must
// split as the studio did.
const DATA_OPTIONS = { seqLen: 32, validationFraction: 0.2, seed: 7 };
const CONTENT = styleCorpus(12, 1);

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

/** The zip's files by their path inside its one folder, and that folder. */
function unzipped(bytes: Uint8Array): { folder: string; files: Map<string, Uint8Array> } {
  const entries = Object.entries(unzipSync(bytes));
  const folders = new Set(entries.map(([path]) => path.split('/')[0]));
  expect(folders.size).toBe(1);
  const [folder] = folders;
  return {
    folder,
    files: new Map(entries.map(([path, b]) => [path.slice(folder.length + 1), b])),
  };
}

/** Rank, learning rate and steps as the engine's config file says them. */
function configFigures(target: TargetName, files: Map<string, Uint8Array>) {
  const file = text(files.get(TARGETS[target].config));
  if (target === 'trl') {
    const c = JSON.parse(file) as {
      lora: { r: number };
      training: { learning_rate: number; max_steps: number };
    };
    return { rank: c.lora.r, lr: c.training.learning_rate, steps: c.training.max_steps };
  }
  const c = parse(file) as Record<string, number>;
  return {
    rank: target === 'axolotl' ? c.lora_r : c.lora_rank,
    lr: c.learning_rate,
    steps: c.max_steps,
  };
}

describe('a run’s name', () => {
  it('says the init and the rank, or S²FT’s density', () => {
    expect(runName('zimmy-stories.txt', { init: 'lora', rank: 8 })).toBe('zimmy-stories · lora r8');
    expect(runName('zimmy.txt', { init: 's2ft', rank: 8, density: 0.2 })).toBe(
      'zimmy · s2ft density 0.2',
    );
    expect(runName('zimmy.txt', { init: 's2ft', rank: 8 })).toBe('zimmy · s2ft density 0.1');
  });
});

describe('exporting a run from the Train panel', () => {
  it('hands a finished run to each engine as the CLI would, and lists what each cannot express', async () => {
    const runStore = recordingStore();
    const studio = await studioWithModel(runStore);
    expect(await studio.exportableRun()).toBeNull();
    await expect(studio.exportRun('trl')).rejects.toThrow(/There is no run to export/);

    await studio.prepareData(CONTENT, 'zimmy.txt', DATA_OPTIONS);
    let during: Promise<unknown> | undefined;
    const outcome = await studio.startTraining(config, (p) => {
      if (p.step === 2 && p.point && !during)
        during = Promise.all([studio.exportableRun(), studio.exportRun('trl').catch(String)]);
    });
    expect(outcome.status).toBe('done');
    // Mid-run there is nothing to export yet.
    expect(await during).toEqual([null, expect.stringMatching(/Stop the training run/)]);
    // The store no longer holds the finished run; the worker kept its last checkpoint.
    expect(await studio.savedRun()).toBeNull();
    const last = runStore.saves.at(-1)!;
    expect(last.checkpoint.step).toBe(6);
    // The checkpoint records its data as the CLI's does.
    expect(last.checkpoint.data).toEqual({
      file: 'zimmy.txt',
      sha256: createHash('sha256').update(CONTENT).digest('hex'),
      seqLen: 32,
      validationFraction: 0.2,
    });

    const info = await studio.exportableRun();
    expect(info).toMatchObject({
      name: 'zimmy · lora r4',
      baseModel: 'stories260K (built-in)',
      modelId: null,
      step: 6,
      totalSteps: 6,
    });
    const expected = handoffRun(last.checkpoint, last.dataset, { splitSeed: 7 });
    for (const target of TARGET_NAMES) {
      // The panel's list is spellRun's `lost`, setting by setting.
      const lost = spellRun(expected, target).settings.flatMap(({ setting, spelled }) =>
        spelled.lost ? [{ setting: setting.name, why: spelled.lost }] : [],
      );
      expect(lost.length).toBeGreaterThan(0);
      expect(info?.lost[target]).toEqual(lost);

      const zip = await studio.exportRun(target);
      expect(zip.name).toBe(`zimmy-lora-r4-${target}.zip`);
      const { folder, files } = unzipped(zip.bytes);
      expect(folder).toBe(`zimmy-lora-r4-${target}`);
      expect([...files.keys()]).toEqual(expect.arrayContaining(['data/train.jsonl', 'README.md']));
      expect(files.has(TARGETS[target].config)).toBe(true);
      // Byte for byte what `export-run --to TARGET` writes for this checkpoint and data.
      expect(files).toEqual(exportRunFiles(expected, target));
      expect(configFigures(target, files)).toEqual({ rank: 4, lr: 1e-2, steps: 6 });
      const readme = text(files.get('README.md'));
      for (const { why } of lost) expect(readme).toContain(why);
    }

    // The data split with the Data panel's seed, not the run's.
    const { files } = unzipped((await studio.exportRun('trl')).bytes);
    const split = exportedDataset(CONTENT, 'zimmy.txt', { validationFraction: 0.2, seed: 7 });
    expect(split.validation.length).toBeGreaterThan(0);
    expect(text(files.get('data/validation.jsonl'))).toBe(jsonl(split.validation));
    expect(text(files.get('data/train.jsonl'))).toBe(jsonl(split.train));
    const other = exportedDataset(CONTENT, 'zimmy.txt', {
      validationFraction: 0.2,
      seed: config.train.seed,
    });
    expect(jsonl(other.validation)).not.toBe(jsonl(split.validation));
    expect(text(files.get('README.md'))).toContain('seed 7');

    // A base on a local file: the placeholder, or the Hub id the user types.
    const axolotl = (zip: { bytes: Uint8Array }) =>
      parse(text(unzipped(zip.bytes).files.get('axolotl.yaml'))) as { base_model: string };
    expect(axolotl(await studio.exportRun('axolotl')).base_model).toBe(
      '/path/to/stories260K (built-in)',
    );
    expect(axolotl(await studio.exportRun('axolotl', ' karpathy/tinyllamas ')).base_model).toBe(
      'karpathy/tinyllamas',
    );
    await expect(studio.exportRun('axolotl', 'tiny llamas')).rejects.toThrow(
      'tiny llamas is not a Hub model id: give it as owner/name, or leave it blank.',
    );
    await expect(studio.exportRun('unsloth' as TargetName)).rejects.toThrow(
      /no export for unsloth/,
    );
  });

  it('exports a stopped run after a reload, and one saved before runs recorded their data', async () => {
    const runStore = memoryRunStore();
    const first = await studioWithModel(runStore);
    await first.prepareData(CONTENT, 'zimmy.txt', DATA_OPTIONS);
    const stopped = await first.startTraining(config, (p) => {
      if (p.step === 3 && p.point) void first.stopTraining();
    });
    expect(stopped.status).toBe('stopped');

    // A reloaded page: the run store's checkpoint and data text.
    const second = await studioWithModel(runStore);
    expect(await second.exportableRun()).toMatchObject({ step: 3, totalSteps: 6 });
    const saved = (await runStore.load())!;
    const expected = handoffRun(saved.checkpoint, saved.dataset, { splitSeed: 7 });
    const { files } = unzipped((await second.exportRun('llamafactory')).bytes);
    expect(files).toEqual(exportRunFiles(expected, 'llamafactory'));
    expect(configFigures('llamafactory', files)).toEqual({ rank: 4, lr: 1e-2, steps: 6 });
    expect(text(files.get('README.md'))).toContain('(the studio had run 3)');

    // Saved by an older studio, whose checkpoints did not record their data: the data options
    // saved with the run say the same.
    const old: SavedRun = { ...saved, checkpoint: { ...saved.checkpoint, data: undefined } };
    const oldStore = memoryRunStore();
    await oldStore.save(old);
    const third = await studioWithModel(oldStore);
    const { files: oldFiles } = unzipped((await third.exportRun('llamafactory')).bytes);
    expect(oldFiles).toEqual(files);

    // Discarded: nothing left to export.
    await third.discardSavedRun();
    expect(await third.exportableRun()).toBeNull();
  });
});
