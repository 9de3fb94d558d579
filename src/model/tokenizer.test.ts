import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { builtIn, fixtureJson } from '../testing/fixtures.ts';
import { FormatError } from './errors.ts';
import { readLlama2cTokenizer } from './llama2c-tokenizer.ts';
import { fromLlama2c, hfTokenizer, type TextTokenizer } from './tokenizer.ts';

const TEXTS = [
  'Hello world',
  'Once upon a time, there was a little girl.',
  'naïve café — 你好 🙂\n\ttabs  and  spaces',
  '',
];

/** tok512.bin converted to a SentencePiece-BPE tokenizer.json (src/testing/generated-fixtures.ts). */
const sentencePiece = () =>
  hfTokenizer(
    fixtureJson('tokenizers/sentencepiece-tok512/tokenizer.json'),
    fixtureJson('tokenizers/sentencepiece-tok512/tokenizer_config.json'),
  );
const smollm = () =>
  hfTokenizer(
    fixtureJson('tokenizers/smollm-135m-instruct/tokenizer.json'),
    fixtureJson('adapters/smollm-135m-instruct/medai_TFM-HITESH_100epochs/tokenizer_config.json'),
  );
const gpt2 = () => hfTokenizer(fixtureJson('tokenizers/gpt2/tokenizer.json_distilgpt2_official'));
const llama2c = () => fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin'));

describe.each<[string, () => TextTokenizer]>([
  ['SentencePiece BPE with byte fallback', sentencePiece],
  ['SmolLM (byte-level BPE)', smollm],
  ['GPT-2 (byte-level BPE)', gpt2],
  ['llama2.c tok512', llama2c],
])('%s', (_, load) => {
  it.each(TEXTS)('round-trips %j', (text) => {
    const tok = load();
    const ids = tok.encode(text, { specialTokens: false });
    expect(ids.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
    expect(tok.decode(ids)).toBe(text);
  });
});

describe('matches the reference tokenizations', () => {
  it('GPT-2 ids for "Hello world" (the published ones)', () => {
    expect(gpt2().encode('Hello world')).toEqual([15496, 995]);
  });

  it('SentencePiece BPE (tokenizers library) gives llama2.c’s greedy merges, id for id', () => {
    const stories = readFileSync(
      new URL('../../public/datasets/zimmy-stories.txt', import.meta.url),
      'utf8',
    ).slice(0, 3000);
    for (const text of [...TEXTS, stories])
      expect(sentencePiece().encode(text)).toEqual(llama2c().encode(text));
  });

  it('special tokens: BOS/EOS ids from tokenizer_config.json', () => {
    expect(sentencePiece()).toMatchObject({ bosId: 1, eosIds: [2], vocabSize: 512 });
    expect(smollm()).toMatchObject({ bosId: 1, eosIds: [2], vocabSize: 49152 });
  });
});

describe('chat templates', () => {
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi!' },
  ];
  it('renders Zephyr-style (TinyLlama-Chat’s) and SmolLM’s (ChatML) templates', () => {
    expect(sentencePiece().chat(messages, { addGenerationPrompt: true })).toBe(
      '<|system|>\nBe brief.</s>\n<|user|>\nHi!</s>\n<|assistant|>\n',
    );
    expect(smollm().chat(messages, { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(gpt2().chat(messages)).toBeNull();
  });
});

it('refuses a file that is not a tokenizer.json', () => {
  expect(() => hfTokenizer({ version: '1.0' }, {}, 'vocab.json')).toThrow(FormatError);
  expect(() => hfTokenizer([], {}, 'vocab.json')).toThrow(/vocab.json: is not a tokenizer.json/);
});
