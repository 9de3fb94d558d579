// The benchmark's random Llama GGUF files read back by our loader: the metadata gives the shape,
// the tokenizer has its tokens, and the three types hold one model (the F16 file's values,
// rounded to Q8_0 and Q4_K within those formats' errors).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGgufModel } from './load.ts';
import { readGguf } from './read.ts';
import { writeRandomLlamaGguf, type LlamaGgufShape, type ModelFileType } from './write-model.ts';

const SHAPE: LlamaGgufShape = {
  hiddenSize: 256,
  intermediateSize: 512,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
  vocabSize: 300,
  specialTokens: 12,
  contextLength: 128,
  ropeTheta: 500000,
  rmsNormEps: 1e-5,
};

const dir = mkdtempSync(join(tmpdir(), 'write-model-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function written(type: ModelFileType) {
  const path = join(dir, `model-${type}.gguf`);
  writeRandomLlamaGguf(path, SHAPE, type, 7);
  const bytes = new Uint8Array(readFileSync(path));
  return { bytes, model: loadGgufModel(bytes, path) };
}

describe('writeRandomLlamaGguf', () => {
  const files = { F16: written('F16'), Q8_0: written('Q8_0'), Q4_K: written('Q4_K') };

  it('writes a llama model of the shape, with tied embeddings and its tokenizer', () => {
    const { config, tokenizer } = files.F16.model;
    expect(config).toMatchObject({
      hiddenSize: 256,
      intermediateSize: 512,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 64,
      vocabSize: 300,
      maxPositions: 128,
      tieWordEmbeddings: true,
      bosTokenId: 288,
      eosTokenIds: [289],
    });
    expect(config.arch.ropes[0].invFreq[1]).toBeCloseTo(500000 ** (-2 / 64), 12);
    expect(tokenizer.vocabSize).toBe(300);
    const gguf = readGguf(files.F16.bytes, 'F16');
    const tokens = gguf.metadata.get('tokenizer.ggml.tokens');
    expect(tokens?.type === 'array' && tokens.value.slice(286, 290)).toEqual([
      'tok7y',
      'tok7z',
      '<|begin_of_text|>',
      '<|end_of_text|>',
    ]);
  });

  it('stores every matrix in the type asked for and the norms in F32', () => {
    for (const type of ['F16', 'Q8_0', 'Q4_K'] as const) {
      const gguf = readGguf(files[type].bytes, type);
      const types = [...gguf.tensors.values()].map((t) => `${t.name} ${t.type}`);
      expect(types).toContain(`token_embd.weight ${type}`);
      expect(types).toContain(`blk.1.ffn_down.weight ${type}`);
      expect(types).toContain('blk.1.ffn_norm.weight F32');
      expect(gguf.tensors.has('output.weight')).toBe(false);
    }
  });

  it('holds the same model in each type', () => {
    const name = 'model.layers.1.mlp.down_proj.weight';
    const f16 = files.F16.model.weights.get(name)!.data;
    // Uniform values of std 0.02: Q8_0's step is max/127 per 32, Q4_K's about range/15 per 32.
    for (const [type, bound] of [
      ['Q8_0', 0.035 / 127],
      ['Q4_K', 0.07 / 15],
    ] as const) {
      const q = files[type].model.weights.get(name)!.data;
      expect(q.length).toBe(f16.length);
      const worst = f16.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i])), 0);
      expect(worst, type).toBeLessThan(bound);
      expect(worst, type).toBeGreaterThan(0);
    }
    const norm = files.F16.model.weights.get('model.layers.0.input_layernorm.weight')!.data;
    expect(files.Q4_K.model.weights.get('model.layers.0.input_layernorm.weight')!.data).toEqual(
      norm,
    );
    expect(Math.min(...norm)).toBeGreaterThanOrEqual(0.9);
  });
});
