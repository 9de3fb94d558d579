// PEFT's embedding LoRA (lora_embedding_A [r × vocab], lora_embedding_B [dim × r]): read, applied
// at run time exactly as the embedding table E + s·(B·A)ᵀ, merged, and written back under PEFT's
// key names.
import { describe, expect, it } from 'vitest';
import { releaseTensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { gaussian } from '../linalg/random.ts';
import { mergeAdapters } from '../merge/merge.ts';
import { createGpuModel } from '../model/forward.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import { peftFiles } from './peft.ts';
import { adapterTerms, readPeftAdapter, shapeMismatches } from './peft-read.ts';
import { gpuCompute } from '../merge/compute.ts';

const gpu = useGpu();
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8, vocabSize: 23 });
const weights = randomWeights(config, 41);
const R = 3;
const ALPHA = 6;
const S = ALPHA / R;
const Q = 'model.layers.1.self_attn.q_proj';

const eA = gaussian(R * config.vocabSize, 1); // r × vocab
const eB = gaussian(config.hiddenSize * R, 2).map((v) => v * 0.3); // dim × r
const qA = gaussian(R * config.hiddenSize, 3).map((v) => v * 0.3);
const QOUT = config.numHeads * config.headDim;
const qB = gaussian(QOUT * R, 4).map((v) => v * 0.3);

function files(): Map<string, Uint8Array> {
  const adapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: R,
    lora_alpha: ALPHA,
    target_modules: ['embed_tokens', 'q_proj'],
    base_model_name_or_path: 'tiny/base',
  };
  const p = 'base_model.model.';
  return new Map([
    ['adapter_config.json', new TextEncoder().encode(JSON.stringify(adapterConfig))],
    [
      'adapter_model.safetensors',
      writeSafetensors([
        { name: `${p}model.embed_tokens.lora_embedding_A`, shape: [R, config.vocabSize], data: eA },
        {
          name: `${p}model.embed_tokens.lora_embedding_B`,
          shape: [config.hiddenSize, R],
          data: eB,
        },
        { name: `${p}${Q}.lora_A.weight`, shape: [R, config.hiddenSize], data: qA },
        { name: `${p}${Q}.lora_B.weight`, shape: [QOUT, R], data: qB },
      ]),
    ],
  ]);
}

/** base + c·s·(B·A) or its transpose, dense (rows × cols of base). */
function withUpdate(
  base: Float32Array,
  a: Float32Array,
  b: Float32Array,
  out: number,
  width: number,
  c: number,
  transposed: boolean,
) {
  const result = Float32Array.from(base);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < width; i++) {
      let v = 0;
      for (let j = 0; j < R; j++) v += b[o * R + j] * a[j * width + i];
      result[transposed ? i * out + o : o * width + i] += c * S * v;
    }
  return result;
}

describe('embedding LoRA', () => {
  const adapter = readPeftAdapter(files(), 'emb');

  it('reads lora_embedding_A/B as a module whose B·A is the transposed table update', () => {
    const m = adapter.modules.get('model.embed_tokens');
    expect(m).toMatchObject({ rank: R, scale: S, embedding: true });
    expect(adapter.details.targets).toEqual(['embed_tokens', 'q_proj']);
    expect(shapeMismatches(adapter, config)).toEqual([]);
    const wrong = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8, vocabSize: 29 });
    expect(shapeMismatches(adapter, wrong)).toEqual([
      'model.embed_tokens: adapter expects in=23, model has 29',
    ]);
  });

  it('applies at run time exactly as the updated embedding table (and q_proj) would', async () => {
    const weight = 0.7;
    const baked = new Map(weights);
    const embed = weights.get('model.embed_tokens.weight')!;
    const d = config.hiddenSize;
    baked.set('model.embed_tokens.weight', {
      shape: embed.shape,
      data: withUpdate(embed.data, eA, eB, d, config.vocabSize, weight, true),
    });
    const q = weights.get(`${Q}.weight`)!;
    baked.set(`${Q}.weight`, {
      shape: q.shape,
      data: withUpdate(q.data, qA, qB, QOUT, d, weight, false),
    });
    const reference = createGpuModel(gpu(), config, baked);
    const model = createGpuModel(gpu(), config, weights);
    const applied = await adapterTerms(gpu(), model.transformer, [{ adapter, weight }]);
    try {
      model.setAdapters(applied.terms);
      const tokens = [1, 5, 22, 3, 17, 2, 11];
      const expected = await reference.forwardAll(tokens, 0);
      expect(relativeNormError(await model.forwardAll(tokens, 0), expected)).toBeLessThan(1e-5);
      // Without the embedding term the output differs: the test sees it.
      model.setAdapters(new Map([...applied.terms].filter(([path]) => path === Q)));
      expect(relativeNormError(await model.forwardAll(tokens, 0), expected)).toBeGreaterThan(1e-3);
    } finally {
      releaseTensor(gpu(), ...applied.tensors);
      model.dispose();
      reference.dispose();
    }
  });

  it('merges like any module and is written back under PEFT’s embedding key names', async () => {
    const { adapter: merged } = await mergeAdapters(gpuCompute(gpu()), [adapter], {
      method: 'svd',
      rank: R,
      adapters: [{ id: 'emb', weight: 0.5 }],
    });
    const out = peftFiles(merged);
    const names = [
      ...readSafetensors(out.get('adapter_model.safetensors')!, 'merged').header.tensors.keys(),
    ];
    expect(names).toContain('base_model.model.model.embed_tokens.lora_embedding_A');
    expect(names).toContain('base_model.model.model.embed_tokens.lora_embedding_B');
    const back = readPeftAdapter(out, 'merged').modules.get('model.embed_tokens')!;
    expect(back.embedding).toBe(true);
    const delta = (m: { a: Float32Array; b: Float32Array; rank: number; scale: number }) => {
      const r = m.rank;
      const width = m.a.length / r;
      return Float64Array.from({ length: config.hiddenSize * width }, (_, k) => {
        const o = Math.floor(k / width);
        const i = k % width;
        let v = 0;
        for (let j = 0; j < r; j++) v += m.b[o * r + j] * m.a[j * width + i];
        return m.scale * v;
      });
    };
    const expected = delta(adapter.modules.get('model.embed_tokens')!).map((v) => 0.5 * v);
    expect(relativeNormError(delta(back), expected)).toBeLessThan(1e-5);
  });
});
