// GGUF models on the GPU with their weights kept as the file's quantized blocks, decoded inside
// the matmul and the embedding lookup: logits as llama.cpp computes from the same values
// dequantized (expected-<Q>.json's dequantized_f32_reference), in a fraction of the memory.
import { describe, expect, it } from 'vitest';
import type { LoraSpec } from '../../adapters/config.ts';
import { TrainableAdapter } from '../../train/trainable.ts';
import { fixture, fixtureJson } from '../../testing/fixtures.ts';
import { useGpu } from '../../testing/gpu.ts';
import { createGpuModel } from '../forward.ts';
import { loadGgufWeights } from './load.ts';

const gpu = useGpu();

interface Summary {
  logits: number[][][];
  logits_last_row: number[][];
}
interface Expected {
  input_ids: number[][];
  dequantized_f32_reference: Summary;
}

describe.each(['llama', 'qwen2'])('%s GGUF on the GPU from its blocks', (model) => {
  it.each(['Q8_0', 'Q4_0', 'Q5_1', 'Q4_K_M', 'Q6_K', 'Q2_K'])(
    '%s: logits as llama.cpp on the dequantized values, weights a fraction of f32',
    async (quant) => {
      const file = `model-${quant}.gguf`;
      const { config, weights } = loadGgufWeights(fixture(`models/gguf/${model}/${file}`), file);
      const expected = fixtureJson(`models/gguf/${model}/expected-${quant}.json`) as Expected;
      const want = expected.dequantized_f32_reference;
      const quantized = createGpuModel(gpu(), config, weights, 'file');
      const widened = createGpuModel(gpu(), config, weights, 'f32');
      try {
        expect(quantized.weightDTypes).toContain(quant.replace(/_M$/, '').toLowerCase());
        expect(quantized.weightBytes).toBeLessThan(widened.weightBytes / 3);
        const V = config.vocabSize;
        let worst = 0;
        for (const [r, ids] of expected.input_ids.entries()) {
          const all = await quantized.forwardAll(ids, 0);
          const rows = [
            ...want.logits[r].map((row, p) => [p, row] as const),
            [ids.length - 1, want.logits_last_row[r]] as const,
          ];
          for (const [p, row] of rows)
            row.forEach((e, v) => (worst = Math.max(worst, Math.abs(all[p * V + v] - e))));
        }
        // llama.cpp's f32 logits of the same values, to 7 significant digits: measured ≤ 7.6e-6.
        expect(worst).toBeLessThan(5e-5);
      } finally {
        quantized.dispose();
        widened.dispose();
      }
    },
  );
});

describe('adapters on a quantized base', () => {
  it('refuses a base-rewriting init (PiSSA) by name, and starts a LoRA', async () => {
    const file = 'model-Q4_0.gguf';
    const { config, weights } = loadGgufWeights(fixture(`models/gguf/llama/${file}`), file);
    const model = createGpuModel(gpu(), config, weights, 'file');
    const spec = (init: 'pissa' | 'lora'): LoraSpec => ({
      rank: 2,
      alpha: 4,
      rslora: false,
      targets: ['q_proj'],
      dropout: 0,
      init,
    });
    try {
      await expect(TrainableAdapter.create(gpu(), model.base, spec('pissa'), 1)).rejects.toThrow(
        /pissa rewrites the base weights it adapts, but model\.layers\.0\.self_attn\.q_proj is kept quantized \(q4_0\)/,
      );
      const lora = await TrainableAdapter.create(gpu(), model.base, spec('lora'), 1);
      expect(lora.modules).toHaveLength(2);
      lora.dispose();
    } finally {
      model.dispose();
    }
  });
});
