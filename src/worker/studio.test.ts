import { describe, expect, it } from 'vitest';
import { nodeGpuEntry } from '../gpu/node.ts';
import { kvCacheBytes, UNAPPLIABLE, type GpuStatus } from './api.ts';
import { createStudio, type StudioEnvironment } from './studio.ts';
import { nodeStudioEnvironment } from '../testing/studio.ts';
import { builtIn, fixture } from '../testing/fixtures.ts';
import type { TuningEntries, TuningStore } from '../gpu/tuning.ts';
import { memoryRunStore } from '../train/run-store.ts';
import { styleCorpus } from '../studies/style-corpus.ts';
import { DEFAULT_SETTINGS, type TrainConfig } from '../train/settings.ts';
import type { LoraSpec } from '../adapters/config.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { zipSync } from 'fflate';

/** An in-memory tuning store that records what was saved. */
function memoryStore(): TuningStore & { saved: Map<string, TuningEntries> } {
  const saved = new Map<string, TuningEntries>();
  return {
    saved,
    load: (device) => Promise.resolve(saved.get(device)),
    save: (device, entries) => {
      saved.set(device, entries);
      return Promise.resolve();
    },
  };
}

/** A Node environment for the studio whose tuning store records what was saved. */
const environment = (overrides: Partial<StudioEnvironment> = {}): StudioEnvironment =>
  nodeStudioEnvironment({ tuningStore: memoryStore(), ...overrides });

/** Dawn's entry point, remembering the devices it hands out so a test can lose one. */
function spyingEntry(): { entry: GPU; devices: GPUDevice[] } {
  const real = nodeGpuEntry();
  const devices: GPUDevice[] = [];
  const entry = {
    requestAdapter: async (options?: GPURequestAdapterOptions) => {
      const adapter = await real.requestAdapter(options);
      if (!adapter) return null;
      return new Proxy(adapter, {
        get(target, key) {
          if (key === 'requestDevice') {
            return async (d?: GPUDeviceDescriptor) => {
              const device = await target.requestDevice(d);
              devices.push(device);
              return device;
            };
          }
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function'
            ? (value as (...a: unknown[]) => unknown).bind(target)
            : value;
        },
      });
    },
  } as unknown as GPU;
  return { entry, devices };
}

describe('studio API', () => {
  it('connects, describes the adapter and passes the kernel self-check', async () => {
    const studio = createStudio(
      environment({ gpu: nodeGpuEntry(), secureContext: true, tuningStore: memoryStore() }),
    );
    const status = await studio.connect(() => undefined);
    expect(status.state).toBe('ready');
    if (status.state !== 'ready') return;
    expect(status.adapter.limits.maxBufferSize).toBeGreaterThan(0);
    // The report crosses the worker boundary by structured clone: it must survive a JSON round trip.
    expect(JSON.parse(JSON.stringify(status.adapter))).toEqual(status.adapter);
    const results = await studio.selfCheck();
    expect(results.map((r) => r.kernel)).toEqual([
      'elementwise silu',
      'elementwise affine',
      'reduce sum',
      'reduce max',
      'matmul',
      'matmul, B in f16',
      'matmul, B in bf16',
      'QR',
      'exact SVD',
      'randomized SVD',
      'low-rank product SVD',
    ]);
    for (const r of results) expect(r, `${r.kernel}: ${r.error}`).toMatchObject({ ok: true });
  });

  it('explains a missing WebGPU and an insecure context, and runs on the CPU', async () => {
    const missing = createStudio(
      environment({ gpu: undefined, secureContext: true, tuningStore: memoryStore() }),
    );
    expect(await missing.connect(() => undefined)).toMatchObject({
      state: 'cpu',
      reason: 'no-webgpu',
    });
    const insecure = createStudio(
      environment({ gpu: undefined, secureContext: false, tuningStore: memoryStore() }),
    );
    expect(await insecure.connect(() => undefined)).toMatchObject({
      state: 'cpu',
      reason: 'insecure-context',
    });
    await expect(missing.selfCheck()).rejects.toThrow(/no WebGPU: the studio runs on the CPU/);
  });

  it('explains an adapter-less WebGPU, and runs on the CPU', async () => {
    const noAdapter = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
    const studio = createStudio(
      environment({ gpu: noAdapter, secureContext: true, tuningStore: memoryStore() }),
    );
    expect(await studio.connect(() => undefined)).toMatchObject({
      state: 'cpu',
      reason: 'no-adapter',
    });
  });

  it('reports a lost device and recovers on reconnect', async () => {
    const { entry, devices } = spyingEntry();
    const studio = createStudio(
      environment({ gpu: entry, secureContext: true, tuningStore: memoryStore() }),
    );
    const seen: GpuStatus[] = [];
    await studio.connect((s) => seen.push(s));
    devices[0].destroy();
    await expect.poll(() => seen.map((s) => s.state)).toEqual(['lost']);
    await expect(studio.selfCheck()).rejects.toThrow(/reconnect/);
    expect((await studio.reconnect()).state).toBe('ready');
    expect(seen.map((s) => s.state)).toEqual(['lost', 'ready']);
    expect((await studio.selfCheck()).every((r) => r.ok)).toBe(true);
  });
});

describe('matmul tuning through the studio', () => {
  it('tunes, persists per device, and a later session restores it', async () => {
    const store = memoryStore();
    const first = createStudio(
      environment({ gpu: nodeGpuEntry(), secureContext: true, tuningStore: store }),
    );
    await first.connect(() => undefined);
    const problem = { name: 'rank-8 projection', M: 64, N: 8, K: 32, transA: false, transB: true };
    const tuned = await first.tuneMatmul([problem]);
    expect(tuned.map((t) => t.problem)).toEqual(['rank-8 projection']);
    expect(tuned[0].tile).toMatch(/^(\d+×\d+( \+ subgroups)?|shared 64×64)$/);
    expect(store.saved.size).toBe(1);
    const [entries] = [...store.saved.values()];
    expect(Object.keys(entries)).toEqual([
      expect.stringMatching(/^matmul@[0-9a-f]{8}:NT:M64:N8:K32$/),
    ]);

    const second = createStudio(
      environment({ gpu: nodeGpuEntry(), secureContext: true, tuningStore: store }),
    );
    await second.connect(() => undefined);
    // Restored: tuning again measures nothing and answers the stored tile.
    expect(await second.tuneMatmul([problem])).toEqual(tuned);
  });
});

describe('models in the studio', () => {
  it('loads the built-in model and streams a greedy story that matches llama2.c', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    const info = await studio.loadBuiltinModel();
    expect(info).toMatchObject({ name: 'stories260K (built-in)', parameters: 260_032 });
    const seen: string[] = [];
    const result = await studio.generate('', { maxNewTokens: 200 }, (text) => seen.push(text));
    const expected = new TextDecoder()
      .decode(fixture('models/llama2c/stories260K.greedy200.txt'))
      .trimEnd();
    expect(result.text).toBe(expected);
    expect(result.newTokens).toBe(200);
    expect(seen.length).toBe(200);
    expect(expected.startsWith(seen[10])).toBe(true);
  });

  it('tells the memory at each precision before uploading, and reloads at another', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    const plans: string[] = [];
    const info = await studio.loadBuiltinModel(undefined, (plan) =>
      plans.push(`${plan.precision} ${plan.weights.length}`),
    );
    expect(plans).toEqual(['file 7']);
    const file = info.plan.weights.find((w) => w.precision === 'file')!;
    const q8 = info.plan.weights.find((w) => w.precision === 'q8_0')!;
    expect(info.memoryBytes).toBe(file.bytes + kvCacheBytes(info.config));
    expect(q8.bytes).toBeLessThan(file.bytes / 2);
    expect(info.plan.bufferLimit).toBeGreaterThan(0);

    const reloaded = await studio.reloadModel('q8_0');
    expect(reloaded.plan.precision).toBe('q8_0');
    expect(reloaded.weightDTypes).toContain('q8_0');
    expect(reloaded.memoryBytes - info.memoryBytes).toBe(q8.bytes - file.bytes);
    const { newTokens } = await studio.generate('Once upon a time', { maxNewTokens: 8 });
    expect(newTokens).toBe(8);
  });
  it('continues a prompt, and refuses to generate without a model', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    await expect(studio.generate('Once', { maxNewTokens: 5 })).rejects.toThrow(/No model loaded/);
    await studio.loadBuiltinModel();
    const { text, newTokens } = await studio.generate('Once upon a time', {
      maxNewTokens: 20,
      temperature: 0.8,
      seed: 3,
    });
    expect(text.startsWith('Once upon a time')).toBe(true);
    expect(newTokens).toBeGreaterThan(0);
  });

  it('loads a dropped HF folder, reports its size, computes perplexity, and refuses a bad one clearly', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    const dir = 'models/hf/quatricmorph_tiny-llama-2shard/';
    const names = [
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ];
    const folder = names.map((n) => new File([fixture(dir + n)], n));
    // It has no tokenizer of its own: drop the llama2.c one? Its 512 ids exceed the 64-token vocabulary.
    await expect(studio.loadModelFiles(folder, 'tiny')).rejects.toThrow(
      /tiny: needs its tokenizer/,
    );
    await expect(
      studio.loadModelFiles([...folder, new File([builtIn('tok512.bin')], 'tok512.bin')], 'tiny'),
    ).rejects.toThrow(/ends after 64 tokens|larger than the model's/);

    const stories = [
      new File([builtIn('stories260K.bin')], 'stories260K.bin'),
      new File([builtIn('tok512.bin')], 'tok512.bin'),
    ];
    const info = await studio.loadModelFiles(stories, 'stories');
    expect(info).toMatchObject({ name: 'stories', parameters: 260_032 });
    const report = await studio.perplexity('Once upon a time, there was a little girl named Lily.');
    expect(report.perplexity).toBeGreaterThan(1);
    expect(report.perplexity).toBeLessThan(50);
    await studio.unloadModel();
    await expect(studio.perplexity('x y')).rejects.toThrow(/No model loaded/);
  });
});

describe('training through the studio API', () => {
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
  const options = { seqLen: 32, validationFraction: 0.2, seed: 1 };

  it('trains on a dropped dataset, reports progress and puts the adapter in the library', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    const summary = await studio.prepareData(styleCorpus(12, 1), 'zimmy.txt', options);
    expect(summary.format).toBe('text');
    expect(summary.trainSequences).toBeGreaterThan(0);
    expect(summary.validationSequences).toBeGreaterThan(0);
    const steps: number[] = [];
    const outcome = await studio.startTraining(config, (p) => {
      if (p.point?.loss !== undefined) steps.push(p.step);
    });
    expect(outcome.status).toBe('done');
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(outcome.valLossLast).toBeLessThan(outcome.valLossFirst ?? 0);
    const [item] = await studio.listAdapters();
    expect(item.id).toBe(outcome.adapterId);
    expect(item.baseModel).toBe('stories260K (built-in)');
    const files = await studio.adapterFiles(item.id);
    expect(files.map((f) => f.name).sort()).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    // The model card: base model, method, data and the curve's numbers, as the Hub shows it.
    const card = new TextDecoder().decode(files.find((f) => f.name === 'README.md')?.bytes);
    expect(card).toMatch(/^---\nbase_model: stories260K \(built-in\)\n/);
    expect(card).toContain('zimmy.txt: 12 examples');
    // The snippet loads the folder the zip download unpacks to.
    const { name: zip } = await studio.adapterZip(item.id);
    expect(card).toContain(`PeftModel.from_pretrained(base_model, "${zip.replace(/\.zip$/, '')}")`);
    expect(card).toContain(
      `| validation loss | ${outcome.valLossFirst?.toFixed(3)} → ${outcome.valLossLast?.toFixed(3)} |`,
    );
    const weights = files.find((f) => f.name === 'adapter_model.safetensors');
    expect(readSafetensors(weights?.bytes ?? new Uint8Array(), 'a').header.tensors.size).toBe(
      2 * 2 * 5,
    );
    // A finished run leaves nothing to resume.
    expect(await studio.savedRun()).toBeNull();
  });

  it('after a reload, resumes a stopped run and ends where an uninterrupted run ends', async () => {
    const runStore = memoryRunStore();
    const first = createStudio(environment({ runStore }));
    await first.connect(() => undefined);
    await first.loadBuiltinModel();
    await first.prepareData(styleCorpus(12, 1), 'zimmy.txt', options);
    const stopped = await first.startTraining(config, (p) => {
      if (p.step === 3 && p.point) void first.stopTraining();
    });
    expect(stopped.status).toBe('stopped');
    await expect(first.loadBuiltinModel()).resolves.toBeDefined();

    // A new studio (a reloaded page) sharing the stores.
    const second = createStudio(environment({ runStore }));
    await second.connect(() => undefined);
    await second.loadBuiltinModel();
    const saved = await second.savedRun();
    expect(saved).toMatchObject({
      step: 3,
      totalSteps: 6,
      fileName: 'zimmy.txt',
      matchesModel: true,
    });
    const resumed = await second.resumeSavedRun();
    expect(resumed.status).toBe('done');
    expect(resumed.history.map((h) => h.step)).toEqual([0, 1, 2, 3, 4, 5, 6]);

    const third = createStudio(environment());
    await third.connect(() => undefined);
    await third.loadBuiltinModel();
    await third.prepareData(styleCorpus(12, 1), 'zimmy.txt', options);
    const whole = await third.startTraining(config);
    expect(resumed.history.map((h) => h.loss)).toEqual(whole.history.map((h) => h.loss));
    expect(resumed.trainLossLast).toBe(whole.trainLossLast);
  });

  it('refuses to train without a model or data, and to swap the model mid-run', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    await expect(studio.prepareData('hello', 'a.txt', options)).rejects.toThrow(
      /Load a model first/,
    );
    await studio.loadBuiltinModel();
    await expect(studio.startTraining(config)).rejects.toThrow(/Choose a dataset/);
    await studio.prepareData(styleCorpus(6, 1), 'zimmy.txt', options);
    const running = studio.startTraining({ ...config, train: { ...config.train, steps: 3 } });
    await expect(studio.loadBuiltinModel()).rejects.toThrow(/Stop the training run/);
    await running;
  });
});

/** A studio with the built-in model and a rank-4 adapter trained briefly on the style corpus. */
async function studioWithAdapter(
  targets: LoraSpec['targets'],
  init: LoraSpec['init'],
  settings: Partial<TrainConfig['train']>,
) {
  const studio = createStudio(environment());
  await studio.connect(() => undefined);
  await studio.loadBuiltinModel();
  await studio.prepareData(styleCorpus(12, 1), 'zimmy.txt', {
    seqLen: 32,
    validationFraction: 0.2,
    seed: 1,
  });
  const trained = await studio.startTraining({
    lora: { rank: 4, alpha: 8, rslora: false, targets, dropout: 0, init },
    train: {
      ...DEFAULT_SETTINGS,
      batchSize: 2,
      warmupSteps: 0,
      evalEvery: 0,
      checkpointEvery: 0,
      ...settings,
    },
  });
  return { studio, trained };
}

describe('adapters through the studio API', () => {
  const qwenDir = 'adapters/qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32';
  const qwenFiles = ['adapter_config.json', 'adapter_model.safetensors'].map((name) => ({
    name,
    bytes: fixture(`${qwenDir}/${name}`),
  }));

  it('imports a zipped adapter, applies it at run time with a weight, and weight 0 is the base', async () => {
    const { studio, trained } = await studioWithAdapter(
      ['q_proj', 'v_proj', 'down_proj'],
      'pissa_niter_2',
      { steps: 4, lr: 2e-2 },
    );
    const files = await studio.adapterFiles(trained.adapterId ?? '');
    // The same files, zipped in a subfolder beside a README, as people share them.
    const zip = zipSync({
      'zimmy/README.md': new TextEncoder().encode('# an adapter'),
      ...Object.fromEntries(files.map((f) => [`zimmy/${f.name}`, f.bytes])),
    });
    // The library's own zip: re-imported, it keeps its name.
    const own = await studio.adapterZip(trained.adapterId ?? '');
    expect(own.name).toBe('zimmy-pissa_niter_2-r4.zip');
    const reimported = await studio.importAdapter([own]);
    expect(reimported.item.name).toBe('zimmy-pissa_niter_2-r4');
    const { item, warnings } = await studio.importAdapter([{ name: 'zimmy.zip', bytes: zip }]);
    expect(warnings).toEqual([]);
    expect(item).toMatchObject({
      name: 'zimmy',
      origin: 'imported',
      baseModel: 'stories260K (built-in)',
    });
    // PiSSA exported as a plain LoRA of twice the rank.
    expect(item.details).toMatchObject({
      rank: 8,
      modules: 15,
      targets: ['q_proj', 'v_proj', 'down_proj'],
    });
    expect(item.files.sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);

    const greedy = { maxNewTokens: 30, temperature: 0 };
    const base = await studio.generate('Once upon a time', greedy);
    await studio.applyAdapters([{ id: item.id, weight: 1 }]);
    const adapted = await studio.generate('Once upon a time', greedy);
    expect(adapted.text).not.toBe(base.text);
    await studio.applyAdapters([{ id: item.id, weight: 0 }]);
    expect((await studio.generate('Once upon a time', greedy)).text).toBe(base.text);
    // The imported copy and the trained original compose: 0.5 + 0.5 is the adapter at weight 1.
    await studio.applyAdapters([
      { id: item.id, weight: 0.5 },
      { id: trained.adapterId ?? '', weight: 0.5 },
    ]);
    expect((await studio.generate('Once upon a time', greedy)).text).toBe(adapted.text);
    await studio.applyAdapters([]);
    expect((await studio.generate('Once upon a time', greedy)).text).toBe(base.text);
  });

  it('refuses an adapter for another model unless forced, and then will not apply it', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    // Whose adapter it is comes first; loose files are named after what they are.
    await expect(studio.importAdapter(qwenFiles)).rejects.toThrow(
      /^Qwen2\.5-0\.5B-Instruct · lora r6: an adapter for Qwen\/Qwen2\.5-0\.5B-Instruct; the loaded model is stories260K \(built-in\)\. It does not fit this model:\n {2}model.layers.0.self_attn.q_proj: adapter expects in=896, model has 64/,
    );
    const { item, warnings } = await studio.importAdapter(qwenFiles, { force: true });
    expect(warnings).toContain(
      'trained on Qwen/Qwen2.5-0.5B-Instruct; the loaded model is stories260K (built-in)',
    );
    expect(warnings.some((w) => w.startsWith('does not fit stories260K'))).toBe(true);
    expect(item.details).toMatchObject({
      rank: 6,
      alpha: 32,
      modules: 48,
      targets: ['q_proj', 'v_proj'],
    });
    await expect(studio.applyAdapters([{ id: item.id, weight: 1 }])).rejects.toThrow(
      /does not fit this model/,
    );
    // The library says so too, and says nothing without a model.
    const [listed] = await studio.listAdapters();
    expect(listed).toMatchObject({ id: item.id, fits: false });
    expect(listed.misfit).toMatch(/q_proj: adapter expects in=896, model has 64/);
    await studio.unloadModel();
    expect((await studio.listAdapters())[0].fits).toBeNull();
  });

  it('refuses to apply an adapter whose numbers would give NaN, unless its id is forced', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    const key = 'base_model.model.model.layers.0.self_attn.q_proj';
    const weights = writeSafetensors([
      { name: `${key}.lora_A.weight`, shape: [1, 64], data: new Float32Array(64).fill(0.1) },
      { name: `${key}.lora_B.weight`, shape: [64, 1], data: new Float32Array(64).fill(0.1) },
    ]);
    const config = { peft_type: 'LORA', r: 1, lora_alpha: 1e308, target_modules: ['q_proj'] };
    const { item } = await studio.importAdapter([
      { name: 'adapter_config.json', bytes: new TextEncoder().encode(JSON.stringify(config)) },
      { name: 'adapter_model.safetensors', bytes: weights },
    ]);
    await expect(studio.applyAdapters([{ id: item.id, weight: 1 }])).rejects.toThrow(
      new RegExp(`beyond float32: ${UNAPPLIABLE.replace(/[()]/g, '\\$&')}`),
    );
    await studio.applyAdapters([{ id: item.id, weight: 1 }], { force: [item.id] });
    await studio.applyAdapters([]);
  });

  it('says how many tensors hold NaN in one line, also in the refusal of a misfit', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    const nan = (width: number) => new Float32Array(width).fill(Number.NaN);
    const tensors = [0, 1, 2, 3, 4].flatMap((layer) => {
      const key = `base_model.model.model.layers.${layer}.self_attn.q_proj`;
      return [
        { name: `${key}.lora_A.weight`, shape: [1, 64], data: nan(64) },
        { name: `${key}.lora_B.weight`, shape: [64, 1], data: nan(64) },
      ];
    });
    const files = (width: number) => [
      {
        name: 'adapter_config.json',
        bytes: new TextEncoder().encode(
          JSON.stringify({ peft_type: 'LORA', r: 1, lora_alpha: 1, target_modules: ['q_proj'] }),
        ),
      },
      {
        name: 'adapter_model.safetensors',
        bytes: writeSafetensors(
          tensors.map((t) =>
            t.shape[1] === 64 ? { ...t, shape: [1, width], data: nan(width) } : t,
          ),
        ),
      },
    ];
    const { warnings } = await studio.importAdapter(files(64));
    expect(warnings).toEqual([
      '10 tensors hold NaN or infinite values (640 values; the first: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)',
    ]);
    // Before "Import anyway" the user hears of the NaNs too, not only of the shapes.
    await expect(studio.importAdapter(files(32))).rejects.toThrow(
      /^lora r1: does not fit this model:\n(.*\n)*10 tensors hold NaN or infinite values \(/,
    );
  });

  it('names an import as asked, renames and duplicates library adapters', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    const { item } = await studio.importAdapter(qwenFiles, { name: 'qwen r6' });
    expect(item.name).toBe('qwen r6');
    const renamed = await studio.renameAdapter(item.id, '  qwen style  ');
    expect(renamed).toMatchObject({ id: item.id, name: 'qwen style' });
    await expect(studio.renameAdapter(item.id, ' ')).rejects.toThrow(/needs a name/);
    const copy = await studio.duplicateAdapter(item.id);
    expect(copy.id).not.toBe(item.id);
    expect(copy.name).toBe('qwen style (copy)');
    const names = (await studio.listAdapters()).map((i) => i.name).sort();
    expect(names).toEqual(['qwen style', 'qwen style (copy)']);
    const [a, b] = await Promise.all([item.id, copy.id].map((id) => studio.adapterFiles(id)));
    expect(b.map((f) => f.bytes)).toEqual(a.map((f) => f.bytes));
  });

  it('exports a fitting adapter as a GGUF LoRA for the loaded model, and says why not otherwise', async () => {
    // q_proj and k_proj: their rows are permuted by the loaded model's head counts.
    const { studio, trained } = await studioWithAdapter(['q_proj', 'k_proj', 'v_proj'], 'lora', {
      steps: 2,
    });
    const id = trained.adapterId ?? '';
    const gguf = await studio.adapterGguf(id);
    expect(gguf.name).toBe('zimmy-lora-r4.gguf');
    const view = new DataView(gguf.bytes.buffer, gguf.bytes.byteOffset, gguf.bytes.byteLength);
    expect(new TextDecoder().decode(gguf.bytes.subarray(0, 4))).toBe('GGUF');
    expect(view.getUint32(4, true)).toBe(3);
    // Three modules in each of the five layers, a lora_a and a lora_b each.
    expect(Number(view.getBigUint64(8, true))).toBe(30);
    const text = new TextDecoder('latin1').decode(gguf.bytes.subarray(0, 4096));
    // The key, then its value: type 8 (a string), its length, its bytes.
    const value = text.indexOf('general.type') + 'general.type'.length;
    expect(view.getUint32(value, true)).toBe(8);
    expect(Number(view.getBigUint64(value + 4, true))).toBe(7);
    expect(text.slice(value + 12, value + 19)).toBe('adapter');
    expect(text).toContain('blk.0.attn_k.weight.lora_b');

    const { item: qwen } = await studio.importAdapter(qwenFiles, { force: true });
    await expect(studio.adapterGguf(qwen.id)).rejects.toThrow(
      /^No GGUF of Qwen2\.5-0\.5B-Instruct · lora r6 for stories260K \(built-in\): it is an adapter for Qwen\/Qwen2\.5-0\.5B-Instruct, and a GGUF LoRA is written from its base model's config .*: load Qwen\/Qwen2\.5-0\.5B-Instruct, then export it\.$/,
    );
    await studio.unloadModel();
    await expect(studio.adapterGguf(id)).rejects.toThrow(/^Load the model .* first/);
  });

  it('explains pickles, empty drops and drops holding several adapters', async () => {
    const studio = createStudio(environment());
    await studio.connect(() => undefined);
    await expect(
      studio.importAdapter([{ name: 'adapter_model.bin', bytes: new Uint8Array(8) }]),
    ).rejects.toThrow(/pickle/);
    await expect(
      studio.importAdapter([{ name: 'notes.txt', bytes: new Uint8Array(1) }]),
    ).rejects.toThrow(/holds no adapter/);
    const two = zipSync({
      'a/adapter_config.json': qwenFiles[0].bytes,
      'b/adapter_config.json': qwenFiles[0].bytes,
    });
    await expect(studio.importAdapter([{ name: 'two.zip', bytes: two }])).rejects.toThrow(
      /several adapters \(a, b\)/,
    );
    // Without a model, nothing to check the shapes against: kept, and usable for merging later.
    const { warnings } = await studio.importAdapter(qwenFiles);
    expect(warnings).toEqual([]);
  });
});
