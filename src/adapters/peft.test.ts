// Exported adapters are PEFT's files, and applying them to the unmodified base reproduces the
// trained model exactly — also for base-mutating inits, exported as a rank-2r plain LoRA.
import { describe, expect, it } from 'vitest';
import { releaseTensor, type Tensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { createGpuModel, createRunner, type GpuModel } from '../model/forward.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { fixture } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomWeights, tinyConfig, tinyData } from '../testing/tiny-model.ts';
import { DEFAULT_SETTINGS, train } from '../train/trainer.ts';
import { TARGET_PRESETS, type InitMethod, type LoraSpec } from './config.ts';
import { mutatesBase } from './inits.ts';
import { adapterTerms, readPeftAdapter, shapeMismatches } from './peft-read.ts';

const gpu = useGpu();
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8, vocabSize: 23 });

const data = tinyData(config.vocabSize);

/** Three quick steps on `data`: enough to move every factor away from its init. */
function trainTiny(model: GpuModel, spec: LoraSpec) {
  const settings = { steps: 3, warmupSteps: 0, lr: 5e-2, evalEvery: 0, checkpointEvery: 0 };
  return train({
    gpu: gpu(),
    model,
    baseModel: 'tiny/base',
    data,
    config: { lora: spec, train: { ...DEFAULT_SETTINGS, ...settings } },
  });
}

describe('PEFT export', () => {
  const weights = randomWeights(config, 8);

  it.each([
    ['lora', false],
    ['pissa', false],
    ['olora', true],
    ['milora', false],
    ['eva', false],
    ['corda_ipm', false],
    ['corda_kpm', true],
    ['lora_ga', false],
  ] satisfies [InitMethod, boolean][])(
    '%s (rsLoRA %s): the files applied to the original base give the trained model',
    async (init, rslora) => {
      const model = createGpuModel(gpu(), config, weights);
      const spec = {
        rank: 3,
        alpha: 6,
        rslora,
        targets: TARGET_PRESETS.attention,
        layers: [1],
        dropout: 0,
        init,
      };
      const result = await trainTiny(model, spec);
      const { files } = await result.adapter.peftFiles('tiny/base', config);
      const tensors: Tensor[] = [];
      try {
        const adapterConfig = JSON.parse(
          new TextDecoder().decode(files.get('adapter_config.json')),
        ) as Record<string, unknown>;
        const doubled = mutatesBase(init);
        expect(adapterConfig).toMatchObject({
          peft_type: 'LORA',
          task_type: 'CAUSAL_LM',
          base_model_name_or_path: 'tiny/base',
          r: doubled ? 6 : 3,
          lora_alpha: doubled ? (rslora ? 6 * Math.SQRT2 : 12) : 6,
          use_rslora: rslora,
          target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
          layers_to_transform: [1],
          init_lora_weights: true,
        });
        const st = readSafetensors(
          files.get('adapter_model.safetensors') ?? new Uint8Array(),
          'adapter_model.safetensors',
        );
        expect(st.header.metadata).toEqual({ format: 'pt' });
        expect(st.header.tensors.size).toBe(8);

        // Apply the files as PEFT would: ΔW = (alpha / r or alpha / √r)·B·A on the original W.
        const adapter = readPeftAdapter(files, 'exported');
        expect(adapter.baseModel).toBe('tiny/base');
        const applied = await adapterTerms(gpu(), model.transformer, [{ adapter, weight: 1 }]);
        tensors.push(...applied.tensors);
        const terms = applied.terms;
        const tokens = [1, 4, 9, 16, 2, 7];
        const trained = createRunner(gpu(), result.adapter.view(model.transformer));
        const expected = await trained.forwardAll(tokens, 0);
        trained.dispose();
        model.setAdapters(terms);
        const actual = await model.forwardAll(tokens, 0);
        expect(relativeNormError(actual, expected)).toBeLessThan(1e-5);
      } finally {
        releaseTensor(gpu(), ...tensors);
        result.adapter.dispose();
        model.dispose();
      }
    },
  );
});

describe('other exports of base-mutating inits', () => {
  const weights = randomWeights(config, 8);
  const spec = {
    rank: 3,
    alpha: 6,
    rslora: false,
    targets: TARGET_PRESETS.attention,
    dropout: 0,
    init: 'pissa' as const,
  };

  async function trainedPissa() {
    const model = createGpuModel(gpu(), config, weights);
    const result = await trainTiny(model, spec);
    const runner = createRunner(gpu(), result.adapter.view(model.transformer));
    const expected = await runner.forwardAll([1, 4, 9, 16, 2, 7], 0);
    runner.dispose();
    return { model, adapter: result.adapter, expected };
  }

  it('recompressed to rank r: rank-r PEFT files and the energy that cost', async () => {
    const { model, adapter } = await trainedPissa();
    try {
      const { files, lostEnergy } = await adapter.peftFiles('tiny/base', config, 3);
      const read = readPeftAdapter(files, 'recompressed');
      expect(read.details).toMatchObject({ rank: 3, alpha: 3, rslora: false });
      expect(lostEnergy).toBeGreaterThan(0);
      expect(lostEnergy).toBeLessThan(1);
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });

  it('as trained, with the residual base: the pair reproduces the trained model exactly', async () => {
    const { model, adapter, expected } = await trainedPissa();
    const tensors: Tensor[] = [];
    try {
      const { files, residuals } = await adapter.residualExport('./base-residual', config);
      const residualWeights = new Map(weights);
      for (const [name, values] of residuals)
        residualWeights.set(name, { shape: weights.get(name)?.shape ?? [], data: values });
      const residualModel = createGpuModel(gpu(), config, residualWeights);
      const read = readPeftAdapter(files, 'as trained');
      expect(read.details.rank).toBe(3);
      const applied = await adapterTerms(gpu(), residualModel.transformer, [
        { adapter: read, weight: 1 },
      ]);
      tensors.push(...applied.tensors);
      residualModel.setAdapters(applied.terms);
      const actual = await residualModel.forwardAll([1, 4, 9, 16, 2, 7], 0);
      residualModel.dispose();
      expect(relativeNormError(actual, expected)).toBeLessThan(1e-5);
    } finally {
      releaseTensor(gpu(), ...tensors);
      adapter.dispose();
      model.dispose();
    }
  });
});

describe('DoRA adapters', () => {
  const weights = randomWeights(config, 12);
  const modules = ['model.layers.0.self_attn.q_proj', 'model.layers.1.mlp.down_proj'] as const;

  /** A DoRA adapter in PEFT's layout, and its dense merge: W' = W + w·(g∘(W + sBA) − W). */
  function doraAdapter(weight: number) {
    const random = seededRandom(5);
    const rank = 2;
    const s = 3;
    const tensors: TensorToWrite[] = [];
    const merged = new Map(weights);
    for (const path of modules) {
      const w = weights.get(`${path}.weight`);
      if (!w) throw new Error(path);
      const [out, inputs] = w.shape;
      const a = randomArray(random, rank * inputs, -0.3, 0.3);
      const b = randomArray(random, out * rank, -0.3, 0.3);
      const magnitude = randomArray(random, out, 0.5, 2);
      tensors.push(
        { name: `base_model.model.${path}.lora_A.weight`, shape: [rank, inputs], data: a },
        { name: `base_model.model.${path}.lora_B.weight`, shape: [out, rank], data: b },
        { name: `base_model.model.${path}.lora_magnitude_vector`, shape: [out], data: magnitude },
      );
      const data = new Float32Array(out * inputs);
      for (let o = 0; o < out; o++) {
        const row = new Float64Array(inputs);
        for (let i = 0; i < inputs; i++) {
          let ba = 0;
          for (let j = 0; j < rank; j++) ba += b[o * rank + j] * a[j * inputs + i];
          row[i] = w.data[o * inputs + i] + s * ba;
        }
        const g = magnitude[o] / Math.hypot(...row);
        for (let i = 0; i < inputs; i++) {
          const base = w.data[o * inputs + i];
          data[o * inputs + i] = base + weight * (g * row[i] - base);
        }
      }
      merged.set(`${path}.weight`, { shape: w.shape, data });
    }
    const adapterConfig = { peft_type: 'LORA', r: rank, lora_alpha: rank * s, use_dora: true };
    const files = new Map([
      ['adapter_config.json', new TextEncoder().encode(JSON.stringify(adapterConfig))],
      ['adapter_model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
    ]);
    return { files, merged };
  }

  it.each([1, 0.5, -1])(
    'at weight %d applies g∘(W + sBA) − W exactly as a dense merge',
    async (w) => {
      const { files, merged } = doraAdapter(w);
      const adapter = readPeftAdapter(files, 'dora');
      expect(adapter.details.variant).toBe('dora');
      const model = createGpuModel(gpu(), config, weights);
      const reference = createGpuModel(gpu(), config, merged);
      const applied = await adapterTerms(gpu(), model.transformer, [{ adapter, weight: w }]);
      try {
        model.setAdapters(applied.terms);
        const tokens = [3, 1, 4, 1, 5, 9, 2, 6];
        const actual = await model.forwardAll(tokens, 0);
        const expected = await reference.forwardAll(tokens, 0);
        expect(relativeNormError(actual, expected)).toBeLessThan(1e-5);
      } finally {
        releaseTensor(gpu(), ...applied.tensors);
        model.dispose();
        reference.dispose();
      }
    },
  );

  it('refuses magnitudes without use_dora (use_dora without them: see PEFT import)', () => {
    const { files } = doraAdapter(1);
    const config = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json'))) as object;
    const without = new Map(files).set(
      'adapter_config.json',
      new TextEncoder().encode(JSON.stringify({ ...config, use_dora: false })),
    );
    expect(() => readPeftAdapter(without, 'x')).toThrow(/does not say use_dora/);
  });
});

describe('modules_to_save', () => {
  it('replaces whole weights at weight 1 and interpolates at 0.5, with LoRA factors beside', async () => {
    const weights = randomWeights(config, 14);
    const head = weights.get('lm_head.weight');
    if (!head) throw new Error('lm_head');
    const trained = randomArray(seededRandom(3), head.data.length);
    const adapterConfig = { peft_type: 'LORA', r: 1, lora_alpha: 1, modules_to_save: ['lm_head'] };
    const path = 'model.layers.0.self_attn.v_proj';
    const [out, inputs] = weights.get(`${path}.weight`)?.shape ?? [];
    const files = new Map([
      ['adapter_config.json', new TextEncoder().encode(JSON.stringify(adapterConfig))],
      [
        'adapter_model.safetensors',
        writeSafetensors([
          { name: 'base_model.model.lm_head.weight', shape: head.shape, data: trained },
          {
            name: `base_model.model.${path}.lora_A.weight`,
            shape: [1, inputs],
            data: new Float32Array(inputs).fill(0.1),
          },
          {
            name: `base_model.model.${path}.lora_B.weight`,
            shape: [out, 1],
            data: new Float32Array(out).fill(0.2),
          },
        ]),
      ],
    ]);
    const adapter = readPeftAdapter(files, 'with head');
    expect([...adapter.fullWeights.keys()]).toEqual(['lm_head.weight']);
    for (const w of [1, 0.5]) {
      const model = createGpuModel(gpu(), config, weights);
      const applied = await adapterTerms(gpu(), model.base, [{ adapter, weight: w }]);
      // The reference: the head interpolated, the LoRA term applied the same way.
      const mixed = head.data.map((v, i) => v + w * (trained[i] - v));
      const reference = createGpuModel(
        gpu(),
        config,
        new Map(weights).set('lm_head.weight', { shape: head.shape, data: mixed }),
      );
      const referenceTerms = await adapterTerms(gpu(), reference.base, [
        { adapter: { ...adapter, fullWeights: new Map() }, weight: w },
      ]);
      try {
        model.setAdapters(applied.terms, applied.overrides);
        reference.setAdapters(referenceTerms.terms);
        const tokens = [2, 7, 1, 8, 2, 8];
        const actual = await model.forwardAll(tokens, 0);
        const expected = await reference.forwardAll(tokens, 0);
        expect(Math.max(...actual.map((v, i) => Math.abs(v - expected[i])))).toBeLessThan(1e-4);
      } finally {
        releaseTensor(gpu(), ...applied.tensors, ...referenceTerms.tensors);
        model.dispose();
        reference.dispose();
      }
    }
  });
});

describe('PEFT import', () => {
  const fixtureFiles = (dir: string) =>
    new Map(
      ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
        f,
        fixture(`adapters/${dir}/${f}`),
      ]),
    );

  it('reads real PEFT adapters: keys, ranks, scaling, base model', () => {
    const qwen = readPeftAdapter(
      fixtureFiles('qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32'),
      'qwen r6',
    );
    expect(qwen.baseModel).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(qwen.modules.size).toBe(24 * 2);
    const q = qwen.modules.get('model.layers.0.self_attn.q_proj');
    expect(q).toMatchObject({ rank: 6, scale: 32 / 6 });
    expect(q?.a.length).toBe(6 * 896);
    expect(q?.b.length).toBe(896 * 6);
  });

  it('lists precisely where an adapter does not fit the model', async () => {
    const qwen = readPeftAdapter(
      fixtureFiles('qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32'),
      'qwen r6',
    );
    const problems = shapeMismatches(qwen, config);
    expect(problems).toContain(
      'model.layers.0.self_attn.q_proj: adapter expects in=896, model has 16',
    );
    expect(problems).toContain('model.layers.23.self_attn.v_proj: the model has no such module');
    const unused = () => {
      throw new Error('no weights needed to refuse');
    };
    await expect(
      adapterTerms(gpu(), { config, weight: unused }, [{ adapter: qwen, weight: 1 }]),
    ).rejects.toThrow(/does not fit this model/);
  });

  it('reads a GPT-2 (Conv1D, fan_in_fan_out) adapter for inspection; refuses other task types', () => {
    const gpt2 = readPeftAdapter(fixtureFiles('gpt2/generated-causal-c_attn'), 'gpt2');
    expect(gpt2.details).toMatchObject({ rank: 8, alpha: 16, modules: 12, targets: ['c_attn'] });
    expect(gpt2.modules.get('transformer.h.0.attn.c_attn')?.a.length).toBe(8 * 768);
    expect(() => readPeftAdapter(fixtureFiles('gpt2/generated-seqcls-c_attn'), 'seqcls')).toThrow(
      /describes a SEQ_CLS adapter; LoRA Studio works with causal language models/,
    );
  });

  it('refuses a pickle, a lone file, and what it cannot apply, by name', () => {
    const pickled = new Map(
      ['adapter_config.json', 'adapter_model.bin'].map((f) => [
        f,
        fixture(`adapters/tinyllama-1.1b/generated-pickle/${f}`),
      ]),
    );
    expect(() => readPeftAdapter(pickled, 'x')).toThrow(/pickle.*never opens/);
    pickled.set('adapter_model.bin', new Uint8Array(16).fill(7));
    expect(() => readPeftAdapter(pickled, 'x')).toThrow(
      /is neither safetensors nor a PyTorch pickle/,
    );
    const files = fixtureFiles('qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32');
    files.delete('adapter_model.safetensors');
    expect(() => readPeftAdapter(files, 'x')).toThrow(
      /needs adapter_config.json and adapter_model.safetensors/,
    );
    const dora = fixtureFiles('qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32');
    const json = JSON.parse(new TextDecoder().decode(dora.get('adapter_config.json'))) as object;
    dora.set(
      'adapter_config.json',
      new TextEncoder().encode(JSON.stringify({ ...json, use_dora: true })),
    );
    expect(() => readPeftAdapter(dora, 'x')).toThrow(
      /a DoRA adapter without a fitting lora_magnitude_vector/,
    );
    const untyped = fixtureFiles(
      'qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32',
    );
    untyped.set(
      'adapter_config.json',
      new TextEncoder().encode(JSON.stringify({ r: 8, lora_alpha: 16 })),
    );
    expect(() => readPeftAdapter(untyped, 'x')).toThrow(/has no peft_type/);
  });

  it('reads safetensors saved under the pickle’s name by what they are', () => {
    const dir = 'qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32';
    const files = fixtureFiles(dir);
    const renamed = new Map(files);
    renamed.set('adapter_model.bin', renamed.get('adapter_model.safetensors')!);
    renamed.delete('adapter_model.safetensors');
    const a = readPeftAdapter(files, 'x');
    const b = readPeftAdapter(renamed, 'x');
    expect(b.details).toEqual(a.details);
    expect(b.modules.get('model.layers.3.self_attn.v_proj')?.b).toEqual(
      a.modules.get('model.layers.3.self_attn.v_proj')?.b,
    );
  });
});
