// LoRA extraction through the Studio API, with checkpoints handed over as dropped files arrive
// (File objects with their paths in the drop): a base (the tiny Llama fixture, as an HF folder or
// its f32 GGUF) and a fine-tune of it that differs by a rank-2 update of every linear module and
// a moved final norm. The library must get an adapter that, applied to the base, gives the
// fine-tune's logits, with a report of the energy each module keeps and of what is not carried;
// the loaded model's loss with the adapter must be the fine-tune's; bad input is refused in one
// line, and a cancelled extraction leaves the library as it was.
import { nodeStudio } from '../testing/studio.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { composeWeights } from '../adapters/compose.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { ReferenceModel } from '../model/cpu/reference.ts';
import { hfFolderFiles } from '../model/hf-export.ts';
import { loadHfFolder } from '../model/hf-folder.ts';
import type { ModelWeights } from '../model/weights.ts';
import { fixture } from '../testing/fixtures.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import type { CheckpointFiles, ExtractSettings, StudioApi } from './api.ts';

const LLAMA = 'models/gguf/llama/';
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** A dropped folder: its files as File objects, paths as the drop walks them. */
function folder(name: string, files: ReadonlyMap<string, Uint8Array>): CheckpointFiles {
  return {
    name,
    files: [...files].map(([file, bytes]) => ({
      path: `${name}/${file}`,
      file: new File([new Uint8Array(bytes)], file),
    })),
  };
}

/** One dropped file. */
function single(name: string, bytes: Uint8Array): CheckpointFiles {
  return { name, files: [{ path: name, file: new File([new Uint8Array(bytes)], name) }] };
}

/** A model's HF folder with the fixture's tokenizer beside it (so it loads as a model too). */
function modelFolder(name: string, config: ModelConfig, weights: ModelWeights): CheckpointFiles {
  const files = hfFolderFiles(config, weights);
  for (const f of TOKENIZER_FILES) files.set(f, fixture(`${LLAMA}hf/${f}`));
  return folder(name, files);
}

const copy = (weights: ModelWeights): ModelWeights =>
  new Map([...weights].map(([n, t]) => [n, { ...t, data: t.data.slice() }]));

/** The base plus a rank-2 ΔW on every linear module. */
function tunedFrom(config: ModelConfig, base: ModelWeights, seed: number): ModelWeights {
  const random = seededRandom(seed);
  const tuned = copy(base);
  for (let l = 0; l < config.numLayers; l++)
    for (const m of config.arch.modules) {
      const w = tuned.get(`${modulePath(config.arch, l, m)}.weight`)!;
      const b = randomArray(random, m.out * 2, -0.2, 0.2);
      const a = randomArray(random, 2 * m.in, -0.2, 0.2);
      for (let o = 0; o < m.out; o++)
        for (let i = 0; i < m.in; i++)
          w.data[o * m.in + i] += b[o * 2] * a[i] + b[o * 2 + 1] * a[m.in + i];
    }
  return tuned;
}

const norm = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));
const differenceNorm = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Math.sqrt(Array.from(a).reduce((s, v, i) => s + (v - b[i]) ** 2, 0));

const RANK_2: ExtractSettings = {
  rule: 2,
  targets: ['all-linear'],
  embeddings: 'skip',
  head: 'skip',
};

const TEXT =
  'Once upon a time a small robot found a garden. It watered the flowers every morning, and ' +
  'the flowers grew tall. One day a bird asked the robot why it cared for the garden. The robot ' +
  'said that the garden made it happy, and the bird sang a song for it.';

describe('extracting a LoRA through the studio API', () => {
  let studio: StudioApi;
  let config: ModelConfig;
  let base: ModelWeights;
  /** The fine-tune: rank-2 updates and a moved final norm. */
  let tuned: ModelWeights;
  /** What the adapter can give back: the fine-tune with the base's final norm. */
  let carried: ModelWeights;
  let normName: string;

  beforeAll(async () => {
    studio = nodeStudio();
    await studio.connect(() => undefined);
    const hf = await loadHfFolder(
      ['config.json', 'model.safetensors'].map((name) => ({
        name,
        bytes: () => Promise.resolve(fixture(`${LLAMA}hf/${name}`)),
      })),
    );
    ({ config } = hf);
    base = hf.weights;
    carried = tunedFrom(config, base, 3);
    normName = `${config.arch.norms.final}.weight`;
    tuned = copy(carried);
    tuned.get(normName)!.data[0] += 0.25;
  }, 60_000);

  it('puts an adapter in the library that, applied to the base, gives the fine-tune’s logits', async () => {
    const progress: [number, number][] = [];
    const outcome = await studio.extractAdapter(
      modelFolder('base', config, base),
      modelFolder('tuned', config, tuned),
      RANK_2,
      (done, total) => progress.push([done, total]),
    );
    // Every weight pair read once, and the count said as it went.
    expect(progress.at(-1)).toEqual([base.size, base.size]);
    expect(progress.length).toBe(base.size + 1);

    // The energy report: every module at rank 2 keeps all of its ‖ΔW‖², whose norm is the one
    // the test put there; only the final norm is not carried.
    const types = config.arch.modules.map((m) => m.name);
    expect(outcome.moduleTypes).toEqual(types);
    expect(outcome.numLayers).toBe(config.numLayers);
    expect(outcome.modules).toHaveLength(config.numLayers * types.length);
    for (const m of outcome.modules) {
      expect(m).toMatchObject({ rank: 2 });
      expect(m.energy).toBeGreaterThan(1 - 1e-5);
      expect(m.path).toBe(
        modulePath(
          config.arch,
          m.layer!,
          config.arch.modules.find((a) => a.name === m.module)!,
        ),
      );
      const name = `${m.path}.weight`;
      const want = differenceNorm(tuned.get(name)!.data, base.get(name)!.data);
      expect(m.norm).toBeCloseTo(want, 5);
      expect(m.relative).toBeCloseTo(want / norm(base.get(name)!.data), 5);
    }
    expect(outcome.energy).toBeGreaterThan(1 - 1e-5);
    expect(outcome.saved).toEqual([]);
    expect(outcome.notCarried).toHaveLength(1);
    expect(outcome.notCarried[0].name).toBe(normName);
    expect(outcome.notCarried[0].relative).toBeCloseTo(0.25 / norm(base.get(normName)!.data), 6);

    // In the library, like a trained or imported adapter, with the report among its files.
    const items = await studio.listAdapters();
    const item = items.find((i) => i.id === outcome.item.id)!;
    expect(item).toMatchObject({
      name: 'tuned − base',
      baseModel: 'base',
      origin: 'extracted: rank 2 from tuned − base',
      details: { rank: 2, modules: outcome.modules.length },
    });
    expect(item.files.sort()).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'extraction.json',
    ]);
    expect(item.warnings?.[0]).toMatch(/changed 1 weight that the adapter does not carry/);
    const files = new Map((await studio.adapterFiles(item.id)).map((f) => [f.name, f.bytes]));
    const report = JSON.parse(new TextDecoder().decode(files.get('extraction.json'))) as {
      energy: number;
      not_carried: { name: string }[];
    };
    expect(report.energy).toBeCloseTo(outcome.energy, 9);
    expect(report.not_carried.map((n) => n.name)).toEqual([normName]);

    // Applied to the base as PEFT would apply the downloaded files: the fine-tune, bar its norm.
    const adapter = readPeftAdapter(files, item.name);
    const composed = composeWeights(config, base, [{ adapter, weight: 1 }]);
    const got = new ReferenceModel(composed.config, composed.weights);
    const want = new ReferenceModel(config, carried);
    [5, 17, 3, 200, 42].forEach((token, pos) => {
      const a = got.step(token, pos);
      const b = want.step(token, pos);
      const scale = Math.max(...b.map(Math.abs));
      const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
      expect(worst / scale).toBeLessThan(2e-5);
    });
  }, 60_000);

  it('reads a .gguf base against an HF fine-tune; an energy rule picks each rank; a changed head is saved whole', async () => {
    const withHead = copy(carried);
    const headName = `${config.arch.head}.weight`;
    withHead.get(headName)!.data[7] += 0.5;
    const outcome = await studio.extractAdapter(
      single('model-f32.gguf', fixture(`${LLAMA}model-f32.gguf`)),
      modelFolder('tuned', config, withHead),
      { ...RANK_2, rule: { energy: 0.5, max: 8 }, head: 'save', name: 'half' },
    );
    // A rank-2 ΔW: one triplet where it holds half of the energy, else two, never more.
    for (const m of outcome.modules) {
      expect([1, 2]).toContain(m.rank);
      expect(m.energy).toBeGreaterThanOrEqual(0.5);
      expect(m.energy).toBeLessThanOrEqual(1 + 1e-6);
      if (m.rank === 1) expect(m.energy).toBeLessThan(1 - 1e-4);
    }
    expect(outcome.modules.some((m) => m.rank === 1)).toBe(true);
    expect(outcome.saved).toEqual([headName]);
    expect(outcome.notCarried).toEqual([]);
    expect(outcome.item.name).toBe('half');
    expect(outcome.item.origin).toBe(
      `extracted: rank ≤ ${Math.max(...outcome.modules.map((m) => m.rank))} (50 % energy) from tuned − model-f32.gguf`,
    );
    const files = new Map(
      (await studio.adapterFiles(outcome.item.id)).map((f) => [f.name, f.bytes]),
    );
    expect([...readPeftAdapter(files, 'half').fullWeights.keys()]).toEqual([headName]);
  }, 60_000);

  it('measures the loaded model without and with the adapter: with it, the fine-tune’s loss', async () => {
    const { item } = await studio.extractAdapter(
      modelFolder('base', config, base),
      modelFolder('tuned', config, carried),
      RANK_2,
    );
    const load = (checkpoint: CheckpointFiles) =>
      studio.loadModelFiles(
        checkpoint.files.map((f) => f.file),
        checkpoint.name,
      );
    await load(modelFolder('tuned', config, carried));
    const fineTune = await studio.adapterEffect(item.id, TEXT);
    await load(modelFolder('base', config, base));
    const plain = await studio.perplexity(TEXT);
    const effect = await studio.adapterEffect(item.id, TEXT);
    expect(effect).toMatchObject({ model: 'base', adapter: item.name });
    expect(effect.tokens).toBe(fineTune.tokens);
    expect(effect.tokens).toBeGreaterThan(50);
    expect(Math.abs(effect.before.loss - fineTune.before.loss)).toBeGreaterThan(0.01);
    expect(effect.after.loss).toBeCloseTo(fineTune.before.loss, 4);
    expect(effect.after.perplexity).toBeCloseTo(Math.exp(effect.after.loss), 6);
    // The model's own composition (none applied) is left as it was.
    expect((await studio.perplexity(TEXT)).loss).toBe(plain.loss);
    await expect(studio.adapterEffect(item.id, ' ')).rejects.toThrow(/no text to measure/);
  }, 60_000);

  it('refuses bad input in one line, and a cancelled extraction adds nothing', async () => {
    const before = (await studio.listAdapters()).length;
    const baseFolder = modelFolder('base', config, base);
    const refusal = async (promise: Promise<unknown>, pattern: RegExp) => {
      const error = await promise.then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(pattern);
      expect(error?.message).not.toMatch(/\n/);
    };
    const qwen = single('qwen2.gguf', fixture('models/gguf/qwen2/model-f32.gguf'));
    await refusal(
      studio.extractAdapter(baseFolder, qwen, RANK_2),
      /^qwen2\.gguf is not base's architecture \(the base is a llama model, the tuned one a qwen2\)/,
    );
    const notes = folder('notes', new Map([['readme.txt', new TextEncoder().encode('hello')]]));
    await refusal(
      studio.extractAdapter(notes, baseFolder, RANK_2),
      /^The base notes: holds neither config\.json/,
    );
    // A folder whose weights are pickled: refused from its first bytes, never unpickled.
    const pickled = new Map([
      ['config.json', fixture(`${LLAMA}hf/config.json`)],
      ['pytorch_model.bin', Uint8Array.of(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46)],
    ]);
    await refusal(
      studio.extractAdapter(baseFolder, folder('torch', pickled), RANK_2),
      /^The tuned model torch: pytorch_model\.bin is a PyTorch pickle/,
    );
    const zipped = new Map([['pytorch_model.bin', Uint8Array.of(0x50, 0x4b, 0x03, 0x04, 0, 0)]]);
    await refusal(
      studio.extractAdapter(folder('zipped', zipped), baseFolder, RANK_2),
      /PyTorch pickle/,
    );
    await refusal(
      studio.extractAdapter(baseFolder, modelFolder('again', config, base), RANK_2),
      /^again differs from the base in no module the adapter can carry/,
    );
    const cancelled = studio.extractAdapter(
      baseFolder,
      modelFolder('tuned', config, tuned),
      RANK_2,
      (done) => {
        if (done === 2) void studio.cancelExtraction();
      },
    );
    await expect(cancelled).rejects.toThrow('Cancelled.');
    expect(await studio.listAdapters()).toHaveLength(before);
  }, 60_000);
});
