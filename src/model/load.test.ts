// A tokenizer must belong to its model: one that can emit ids the model has no row for, or that
// covers much less of its vocabulary than checkpoints pad, is refused naming both sizes.
import { describe, expect, it } from 'vitest';
import { builtIn } from '../testing/fixtures.ts';
import { hfFolderFiles } from './hf-export.ts';
import { readLlama2c } from './llama2c.ts';
import { loadModelFiles } from './load.ts';

/** A BPE tokenizer.json with `size` single-character tokens and no merges. */
function tokenizerJson(size: number): Uint8Array {
  const vocab = Object.fromEntries(
    Array.from({ length: size }, (_, i) => [String.fromCodePoint(0x100 + i), i]),
  );
  return new TextEncoder().encode(
    JSON.stringify({
      version: '1.0',
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'BPE', vocab, merges: [] },
    }),
  );
}

describe('a model folder’s tokenizer', () => {
  const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
  const withTokenizer = (size: number) => {
    const files = hfFolderFiles(config, weights);
    files.set('tokenizer.json', tokenizerJson(size));
    return [...files].map(([name, bytes]) => ({ name, bytes: () => Promise.resolve(bytes) }));
  };

  it('may leave a padded tail of the embedding unused', async () => {
    const loaded = await loadModelFiles(withTokenizer(500), 'padded');
    expect(loaded.tokenizer.vocabSize).toBe(500);
  });

  it('is refused when it has more tokens, or far fewer, than the model', async () => {
    for (const size of [600, 300])
      await expect(loadModelFiles(withTokenizer(size), 'other')).rejects.toThrow(
        `tokenizer.json: has ${size} tokens but the model's vocabulary is 512: it belongs to another model`,
      );
  });
});

describe('a chat template in chat_template.jinja', () => {
  it('is read when tokenizer_config.json has none, and does not override one it has', async () => {
    const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const files = hfFolderFiles(config, weights);
    files.set('tokenizer.json', tokenizerJson(512));
    files.set(
      'chat_template.jinja',
      new TextEncoder().encode('{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}'),
    );
    const load = async (tokenizerConfig: object) => {
      files.set('tokenizer_config.json', new TextEncoder().encode(JSON.stringify(tokenizerConfig)));
      const list = [...files].map(([name, bytes]) => ({
        name,
        bytes: () => Promise.resolve(bytes),
      }));
      return (await loadModelFiles(list, 'templated')).tokenizer;
    };
    const messages = [{ role: 'user' as const, content: 'hi' }];
    expect((await load({})).chat(messages)).toBe('<user>hi');
    expect((await load({ chat_template: '[{{ messages[0].content }}]' })).chat(messages)).toBe(
      '[hi]',
    );
  });
});
