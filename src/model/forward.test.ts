import { describe, expect, it } from 'vitest';
import type { Gpu } from '../gpu/device.ts';
import { maxScaledError } from '../linalg/compare.ts';
import { useGpu } from '../testing/gpu.ts';
import { builtIn, fixture, FIXTURES } from '../testing/fixtures.ts';
import { ReferenceModel } from './cpu/reference.ts';
import { parseHfConfig } from './hf-config.ts';
import { folderFiles } from './files-node.ts';
import { createGpuModel } from './forward.ts';
import { generateAll } from './generate.ts';
import { loadHfFolder } from './hf-folder.ts';
import { readLlama2c } from './llama2c.ts';
import { BOS, readLlama2cTokenizer } from './llama2c-tokenizer.ts';

const gpu = useGpu();

describe('GPU forward pass', () => {
  it('reproduces llama2.c’s published greedy output for stories260K', async () => {
    const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const model = createGpuModel(gpu(), config, weights);
    try {
      // 200 positions from BOS, as llama2.c's `-t 0 -n 200` runs them.
      const tokens = await generateAll(model, [BOS], { maxNewTokens: 200 });
      const tok = readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin');
      const expected = new TextDecoder().decode(
        fixture('models/llama2c/stories260K.greedy200.txt'),
      );
      expect(tok.decode([BOS, ...tokens])).toBe(expected.trimEnd());
    } finally {
      model.dispose();
    }
  });

  it('matches the CPU reference on an HF model with explicit head_dim and GQA, prefill then decode', async () => {
    const { config, weights } = await loadHfFolder(
      await folderFiles(`${FIXTURES}models/hf/quatricmorph_tiny-llama-2shard`),
    );
    const cpu = new ReferenceModel(config, weights);
    const model = createGpuModel(gpu(), config, weights);
    try {
      const prompt = [1, 17, 42, 5, 63, 8, 30];
      let expected: Float32Array = new Float32Array(0);
      for (const [pos, token] of prompt.entries()) expected = cpu.step(token, pos);
      expect(maxScaledError(await model.forward(prompt, 0), expected)).toBeLessThan(1e-4);
      for (const [i, token] of [9, 2, 51].entries()) {
        const pos = prompt.length + i;
        expect(
          maxScaledError(await model.forward([token], pos), cpu.step(token, pos)),
          `position ${pos}`,
        ).toBeLessThan(1e-4);
      }
    } finally {
      model.dispose();
    }
  });

  it('matches the CPU reference with Qwen2-style q/k/v biases', async () => {
    const { config, weights } = await loadHfFolder(
      await folderFiles(`${FIXTURES}models/hf/quatricmorph_tiny-llama-2shard`),
    );
    const qwen = parseHfConfig({ ...config.source, model_type: 'qwen2' });
    const withBias = new Map(weights);
    let seed = 7;
    const noise = (n: number) =>
      Float32Array.from({ length: n }, () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648 - 0.5;
      });
    for (let l = 0; l < config.numLayers; l++) {
      for (const [proj, n] of [
        ['q', 128],
        ['k', 32],
        ['v', 32],
      ] as const) {
        withBias.set(`model.layers.${l}.self_attn.${proj}_proj.bias`, {
          shape: [n],
          data: noise(n),
        });
      }
    }
    const cpu = new ReferenceModel(qwen, withBias);
    const model = createGpuModel(gpu(), qwen, withBias);
    try {
      const prompt = [1, 9, 33, 60];
      let expected: Float32Array = new Float32Array(0);
      for (const [pos, token] of prompt.entries()) expected = cpu.step(token, pos);
      expect(maxScaledError(await model.forward(prompt, 0), expected)).toBeLessThan(1e-4);
      // The biases matter: without them the logits differ.
      expect(
        maxScaledError(new ReferenceModel(config, weights).step(1, 0), cpu.step(1, 0)),
      ).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
    }
  });

  it('refuses, before uploading, a model whose tensors exceed the device’s buffer limits', () => {
    const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const limit = Math.min(gpu().limits.maxStorageBufferBindingSize, gpu().limits.maxBufferSize);
    // One layer's K cache holds positions × 4 KV heads × 8 dims of f32.
    const huge = { ...config, maxPositions: Math.floor(limit / (4 * 32)) + 1 };
    expect(() => createGpuModel(gpu(), huge, weights)).toThrow(
      /^loading the model: the KV cache of one layer \(\d+ positions\) needs [\d.]+ \w+ in one buffer; this GPU allows [\d.]+ \w+$/,
    );
  });

  it('names the weight precision that would fit when a weight is too large', () => {
    const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    // The 512 × 64 f32 embedding (128 KiB) is the largest tensor; halves of it fit in 100 KB.
    const small = { limits: { maxStorageBufferBindingSize: 100_000, maxBufferSize: 100_000 } };
    expect(() => createGpuModel(small as Gpu, { ...config, maxPositions: 64 }, weights)).toThrow(
      /model\.embed_tokens\.weight needs 128 KiB in one buffer; this GPU allows [\d.]+ KiB; every weight fits with --weights f16$/,
    );
  });

  it('refuses positions beyond the model’s context', async () => {
    const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const model = createGpuModel(gpu(), config, weights);
    await expect(model.forward([1, 2], 511)).rejects.toThrow(
      /positions up to 513 exceed the model's 512/,
    );
    model.dispose();
  });
});
