import { describe, expect, it } from 'vitest';
import { fixture, fixtureJson } from '../testing/fixtures.ts';
import { FormatError } from './errors.ts';
import { readLlama2cTokenizer } from './llama2c-tokenizer.ts';
import { fromLlama2c, hfTokenizer, type TextTokenizer } from './tokenizer.ts';

const TEXTS = [
  'Hello world',
  'Once upon a time, there was a little girl.',
  'naïve café — 你好 🙂\n\ttabs  and  spaces',
  '',
];

const tinyllama = () =>
  hfTokenizer(
    fixtureJson('tokenizers/tinyllama-1.1b-chat/tokenizer.json'),
    fixtureJson('tokenizers/tinyllama-1.1b-chat/tokenizer_config.json'),
  );
const smollm = () =>
  hfTokenizer(
    fixtureJson('tokenizers/smollm-135m-instruct/tokenizer.json'),
    fixtureJson('adapters/smollm-135m-instruct/medai_TFM-HITESH_100epochs/tokenizer_config.json'),
  );
const gpt2 = () => hfTokenizer(fixtureJson('tokenizers/gpt2/tokenizer.json_distilgpt2_official'));
const llama2c = () =>
  fromLlama2c(readLlama2cTokenizer(fixture('models/llama2c/tok512.bin'), 512, 'tok512.bin'));

describe.each<[string, () => TextTokenizer]>([
  ['TinyLlama (SentencePiece BPE)', tinyllama],
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
  it('GPT-2 and Llama 2 ids for "Hello world" (the published ones)', () => {
    expect(gpt2().encode('Hello world')).toEqual([15496, 995]);
    expect(tinyllama().encode('Hello world')).toEqual([1, 15043, 3186]);
  });

  it('special tokens: BOS/EOS ids from tokenizer_config.json', () => {
    expect(tinyllama()).toMatchObject({ bosId: 1, eosIds: [2], vocabSize: 32000 });
    expect(smollm()).toMatchObject({ bosId: 1, eosIds: [2], vocabSize: 49152 });
  });
});

describe('chat templates', () => {
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi!' },
  ];
  it('renders TinyLlama’s (Zephyr style) and SmolLM’s (ChatML) templates', () => {
    expect(tinyllama().chat(messages, { addGenerationPrompt: true })).toBe(
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
