import { describe, expect, it } from 'vitest';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c } from '../model/tokenizer.ts';
import { fixture } from '../testing/fixtures.ts';
import { parseDataset } from './data.ts';
import { STYLE_NAME, STYLE_PHRASE, styleCorpus } from './style-corpus.ts';

const stories = (count: number, seed: number) => styleCorpus(count, seed).split('\n\n');

describe('styleCorpus', () => {
  it('is a pure function of (count, seed)', () => {
    expect(styleCorpus(20, 3)).toBe(styleCorpus(20, 3));
    expect(styleCorpus(20, 3)).not.toBe(styleCorpus(20, 4));
    // A longer corpus with the same seed starts with the same stories.
    expect(stories(30, 3).slice(0, 20)).toEqual(stories(20, 3));
  });

  it('gives `count` plain-text documents, each with the name and the catch phrase', () => {
    const corpus = styleCorpus(50, 1);
    expect(parseDataset(corpus, 'style.txt')).toHaveLength(50);
    for (const story of stories(50, 1)) {
      expect(story).toContain(STYLE_NAME);
      expect(story).toContain(STYLE_PHRASE);
      const words = story.split(/\s+/).length;
      expect(words).toBeGreaterThanOrEqual(40);
      expect(words).toBeLessThanOrEqual(80);
    }
  });

  it('varies its stories', () => {
    expect(new Set(stories(100, 2)).size).toBeGreaterThan(90);
  });

  it('fits the 512-token vocabulary of stories260K in a modest number of tokens', () => {
    const tokenizer = fromLlama2c(
      readLlama2cTokenizer(fixture('models/llama2c/tok512.bin'), 512, 'tok512.bin'),
    );
    const counts = stories(200, 5).map((story) => tokenizer.encode(story).length);
    expect(Math.max(...counts)).toBeLessThan(150);
    // The name is a few common pieces, not a run of byte tokens.
    expect(tokenizer.encode(` ${STYLE_NAME}`, { specialTokens: false }).length).toBeLessThanOrEqual(
      5,
    );
  });
});
