import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/random.ts';
import { builtIn, fixture } from '../testing/fixtures.ts';
import { greedy, ReferenceModel } from './cpu/reference.ts';
import { FormatError } from './errors.ts';
import { readLlama2c } from './llama2c.ts';
import { interleavedToHalves } from './rope-order.ts';
import { BOS, EOS, readLlama2cTokenizer, type Llama2cTokenizer } from './llama2c-tokenizer.ts';

const DIR = 'models/llama2c/';
const model = () => readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
const tokenizer = () => readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin');

/**
 * llama2.c's encoder as it is written there, quadratic: scan every adjacent pair, merge the
 * leftmost best-scoring one, repeat. The reference for the heap-based encoder.
 */
function scanEncode(tok: Llama2cTokenizer, text: string): number[] {
  const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
  const ids = new Map<string, number>();
  tok.vocab.forEach((piece, id) => {
    if (!ids.has(latin1(piece))) ids.set(latin1(piece), id);
  });
  const tokens: number[] = text.length > 0 ? [ids.get(' ')!] : [];
  for (const char of text) {
    const bytes = new TextEncoder().encode(char);
    const id = ids.get(latin1(bytes));
    if (id !== undefined) tokens.push(id);
    else for (const b of bytes) tokens.push(b + 3);
  }
  for (;;) {
    let [best, at, merged] = [-Infinity, -1, -1];
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = ids.get(latin1(tok.vocab[tokens[i]]) + latin1(tok.vocab[tokens[i + 1]]));
      if (id !== undefined && tok.scores[id] > best) [best, at, merged] = [tok.scores[id], i, id];
    }
    if (at < 0) return [BOS, ...tokens];
    tokens.splice(at, 2, merged);
  }
}

describe('llama2.c checkpoint', () => {
  it('reads stories260K into HF names and shapes', () => {
    const { config, weights } = model();
    expect(config).toMatchObject({
      hiddenSize: 64,
      intermediateSize: 172,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      maxPositions: 512,
      tieWordEmbeddings: true,
    });
    expect(weights.get('model.layers.4.self_attn.k_proj.weight')?.shape).toEqual([32, 64]);
    expect(weights.get('model.layers.0.mlp.down_proj.weight')?.shape).toEqual([64, 172]);
    expect(weights.has('lm_head.weight')).toBe(false);
    // 264,128 parameters in the file, less the RoPE tables (512 × 4 × 2).
    const count = [...weights.values()].reduce((n, t) => n + t.data.length, 0);
    expect(count).toBe(264_128 - 512 * 8);
  });

  it('reproduces the greedy output llama2.c publishes, through the CPU reference forward pass', () => {
    const { config, weights } = model();
    const tokens = greedy(new ReferenceModel(config, weights), [BOS], 200);
    const expected = new TextDecoder().decode(fixture(`${DIR}stories260K.greedy200.txt`));
    expect(tokenizer().decode([BOS, ...tokens])).toBe(expected.trimEnd());
  });

  it('moves RoPE pairs from interleaved (2j, 2j+1) to halves (j, j+d/2) within each head', () => {
    // Two heads of dimension 4, one column: rows are labelled by their original index.
    const rows = Float32Array.from({ length: 8 }, (_, i) => i);
    expect([...interleavedToHalves(rows, 8, 2)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  it.each<[string, (b: Uint8Array) => Uint8Array, RegExp]>([
    [
      'truncated',
      (b) => b.subarray(0, b.byteLength - 100),
      /holds 1056440 bytes but its header .* implies 1056540 \(truncated\?\)/,
    ],
    ['too short', (b) => b.subarray(0, 10), /too short for a llama2.c checkpoint/],
    [
      'a corrupt header',
      (b) => {
        const c = b.slice();
        new DataView(c.buffer).setInt32(8, -7, true);
        return c;
      },
      /n_layers = -7 is not a plausible size/,
    ],
  ])('refuses %s file with a clear message', (_, corrupt, message) => {
    const bytes = corrupt(builtIn('stories260K.bin'));
    expect(() => readLlama2c(bytes, 'stories260K.bin')).toThrow(FormatError);
    expect(() => readLlama2c(bytes, 'stories260K.bin')).toThrow(message);
  });
});

describe('llama2.c tokenizer', () => {
  it('round-trips text, including characters it has no token for (byte fallback)', () => {
    const tok = tokenizer();
    for (const text of [
      'Once upon a time, there was a little girl.',
      'Hello, wörld! 你好 🙂',
      'a',
      '',
    ]) {
      const ids = tok.encode(text, { bos: true, eos: true });
      expect(ids[0]).toBe(BOS);
      expect(ids[ids.length - 1]).toBe(EOS);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('merges by score as llama2.c does', () => {
    const tok = tokenizer();
    const ids = tok.encode('Once upon a time', { bos: false });
    const pieces = ids.map((id) => new TextDecoder().decode(tok.vocab[id]));
    expect(pieces.join('')).toBe(' Once upon a time');
    expect(ids.length).toBeLessThan(8);
  });

  it('gives the ids of llama2.c’s quadratic scan, on random and real text', () => {
    const tok = tokenizer();
    const random = seededRandom(7);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz     ,.!?\nTOé你🙂';
    const texts = Array.from({ length: 40 }, () =>
      Array.from({ length: Math.floor(random() * 300) }, () =>
        alphabet.charAt(Math.floor(random() * alphabet.length)),
      ).join(''),
    );
    const stories = readFileSync(
      new URL('../../public/datasets/snorp-stories.txt', import.meta.url),
      'utf8',
    );
    texts.push(stories.slice(0, 4000), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', ' '.repeat(50));
    for (const text of texts) expect(tok.encode(text)).toEqual(scanEncode(tok, text));
  });

  it('encodes a 200 KB paragraph in well under a second per 100 KB', () => {
    const tok = tokenizer();
    const text = 'once upon a time there was a girl '.repeat(6000);
    const start = performance.now();
    const ids = tok.encode(text);
    expect(performance.now() - start).toBeLessThan(4000);
    expect(tok.decode(ids)).toBe(text);
  });

  it('refuses a tokenizer with a non-finite merge score', () => {
    const bytes = builtIn('tok512.bin');
    // Token 0's score is the float after max_token_length.
    new DataView(bytes.buffer).setFloat32(4, NaN, true);
    expect(() => readLlama2cTokenizer(bytes, 512, 'tok512.bin')).toThrow(
      /tok512.bin: token 0 has a non-finite merge score \(NaN\)/,
    );
  });

  it('refuses a tokenizer whose vocabulary does not match the model', () => {
    expect(() => readLlama2cTokenizer(builtIn('tok512.bin'), 32000, 'tok512.bin')).toThrow(
      /ends after 512 tokens; the model's vocabulary has 32000 \(wrong tokenizer for this model\?\)/,
    );
    expect(() => tokenizer().decode([BOS, 512])).toThrow(
      /token id 512 is outside the vocabulary of 512/,
    );
    expect(() => readLlama2cTokenizer(builtIn('tok512.bin'), 256, 'tok512.bin')).toThrow(
      /larger than the model's/,
    );
  });
});
