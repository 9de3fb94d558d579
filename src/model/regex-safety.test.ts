// Tokenizer regexes that could backtrack exponentially are refused before they run; the patterns
// real tokenizers use pass.
import { describe, expect, it } from 'vitest';
import { fixtureJson } from '../testing/fixtures.ts';
import { regexRisk, tokenizerRegexes } from './regex-safety.ts';
import { hfTokenizer } from './tokenizer.ts';

const REAL = [
  // GPT-2 / RoBERTa
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  // Llama 3 / GPT-4 (cl100k)
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  // Qwen2
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ' {2,}',
  '[]a-z]+',
  '(ab)*',
  '(a|b)+c',
  '((a+)?)',
];

const HOSTILE = [
  ['^(\\w+\\s?)*$', /nested quantifiers/],
  ['(a+)+b', /nested quantifiers/],
  ['((a)*)+', /nested quantifiers/],
  ['(x(a{2,})y){3,}', /nested quantifiers/],
  ['(?:[a-z]+\\d?)*!', /nested quantifiers/],
  ['(a)\\1', /backreference/],
] as const;

describe('regexRisk', () => {
  it.each(REAL)('lets %s run', (pattern) => {
    expect(regexRisk(pattern).reason).toBeNull();
  });
  it.each(HOSTILE)('refuses %s', (pattern, reason) => {
    expect(regexRisk(pattern).reason).toMatch(reason);
  });
});

describe('tokenizer.json', () => {
  it('finds every pattern and loads real tokenizers', () => {
    const json = fixtureJson('tokenizers/sentencepiece-tok512/tokenizer.json');
    expect(() =>
      hfTokenizer(fixtureJson('tokenizers/smollm-135m-instruct/tokenizer.json')),
    ).not.toThrow();
    expect(tokenizerRegexes(json)).toEqual([]);
    const split = { type: 'Split', pattern: { Regex: REAL[0] }, behavior: 'Isolated' };
    expect(
      tokenizerRegexes({ pre_tokenizer: { type: 'Sequence', pretokenizers: [split] } }),
    ).toEqual([REAL[0]]);
  });

  it('refuses a catastrophic normalizer at once, before any text is tokenized', () => {
    const json = fixtureJson('tokenizers/sentencepiece-tok512/tokenizer.json') as Record<
      string,
      unknown
    >;
    const hostile = {
      ...json,
      normalizer: { type: 'Replace', pattern: { Regex: '^(\\w+\\s?)*$' }, content: '' },
    };
    const start = performance.now();
    expect(() => hfTokenizer(hostile)).toThrow(
      /tokenizer.json: has a regex that could run for hours on one sentence \(it repeats a group/,
    );
    expect(performance.now() - start).toBeLessThan(1000);
  });
});
