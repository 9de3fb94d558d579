import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c } from '../model/tokenizer.ts';
import { builtIn } from '../testing/fixtures.ts';
import { parseDataset } from '../train/data.ts';
import {
  STYLE_NAME,
  STYLE_PHRASE,
  ROUTING_STYLES,
  ZIMMY_STYLE,
  styleCorpus,
  type StyleCorpus,
} from './style-corpus.ts';

const split = (style: StyleCorpus, count: number, seed: number) =>
  style.stories(count, seed).split('\n\n');

describe.each(ROUTING_STYLES.map((style) => [style.name, style] as const))(
  'the %s style',
  (_, style) => {
    it('is a pure function of (count, seed)', () => {
      expect(style.stories(20, 3)).toBe(style.stories(20, 3));
      expect(style.stories(20, 3)).not.toBe(style.stories(20, 4));
      // A longer corpus with the same seed starts with the same stories.
      expect(split(style, 30, 3).slice(0, 20)).toEqual(split(style, 20, 3));
    });

    it('gives `count` plain-text documents, each with the name and the catch phrase', () => {
      expect(parseDataset(style.stories(50, 1), 'style.txt')).toHaveLength(50);
      for (const story of split(style, 50, 1)) {
        expect(story).toContain(style.name);
        expect(story).toContain(style.phrase);
        const words = story.split(/\s+/).length;
        expect(words).toBeGreaterThanOrEqual(40);
        expect(words).toBeLessThanOrEqual(80);
      }
    });

    it('varies its stories', () => {
      expect(new Set(split(style, 100, 2)).size).toBeGreaterThan(90);
    });

    it('fits the 512-token vocabulary of stories260K in a modest number of tokens', () => {
      const tokenizer = fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin'));
      const counts = split(style, 200, 5).map((story) => tokenizer.encode(story).length);
      expect(Math.max(...counts)).toBeLessThan(150);
      // The name is a few common pieces, not a run of byte tokens.
      expect(
        tokenizer.encode(` ${style.name}`, { specialTokens: false }).length,
      ).toBeLessThanOrEqual(5);
    });
  },
);

describe('the styles', () => {
  it('never borrow each other’s name or phrase', () => {
    for (const style of ROUTING_STYLES) {
      const text = style.stories(100, 1);
      for (const other of ROUTING_STYLES.filter((o) => o !== style)) {
        expect(text).not.toContain(other.name);
        expect(text).not.toContain(other.phrase);
      }
    }
  });

  it('are the example datasets the studio ships, as public/datasets/README.md makes them', () => {
    for (const style of ROUTING_STYLES) {
      const file = `datasets/${style.name.toLowerCase()}-stories.txt`;
      expect(readFileSync(new URL(`../../public/${file}`, import.meta.url), 'utf8'), file).toBe(
        style.stories(120, 1),
      );
    }
  });

  it('keep the first style under its original names', () => {
    expect(styleCorpus(20, 3)).toBe(ZIMMY_STYLE.stories(20, 3));
    expect([STYLE_NAME, STYLE_PHRASE]).toEqual([ZIMMY_STYLE.name, ZIMMY_STYLE.phrase]);
  });
});
