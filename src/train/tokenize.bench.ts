// Dataset preparation speed (parse, tokenize, split, pack: prepareDataset, what the Data panel
// runs) in MB of text per second, on the example corpora repeated to a few megabytes. The
// built-in model's llama2.c tokenizer is ours; its peer is the same vocabulary as a tokenizer.json
// through @huggingface/tokenizers (what the studio uses for every HF tokenizer), beside SmolLM's
// byte-level BPE through the same library.
import { existsSync, readFileSync } from 'node:fs';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c, hfTokenizer, type TextTokenizer } from '../model/tokenizer.ts';
import { builtIn, FIXTURES, fixtureJson } from '../testing/fixtures.ts';
import { prepareDataset } from './data.ts';

export interface TokenizeBenchRow {
  tokenizer: string;
  engine: string;
  megabytes: number;
  seconds: number;
  tokens: number;
}

/** The two example corpora, repeated to at least `megabytes` MB of text (documents kept whole). */
function corpus(megabytes: number): string {
  const read = (file: string) =>
    readFileSync(new URL(`../../public/datasets/${file}`, import.meta.url), 'utf8').trim();
  const both = `${read('zimmy-stories.txt')}\n\n${read('snorp-stories.txt')}`;
  const parts: string[] = [];
  for (let size = 0; size < megabytes * 1e6; size += both.length + 2) parts.push(both);
  return parts.join('\n\n');
}

/** A tokenizer.json fixture (and its tokenizer_config.json, where the folder has one). */
function hfFixture(folder: string): TextTokenizer {
  const dir = `${FIXTURES}tokenizers/${folder}/`;
  const config = existsSync(`${dir}tokenizer_config.json`)
    ? fixtureJson(`tokenizers/${folder}/tokenizer_config.json`)
    : {};
  return hfTokenizer(fixtureJson(`tokenizers/${folder}/tokenizer.json`), config);
}

/** The best of `reps` runs of prepareDataset for each tokenizer. */
export function benchTokenize(megabytes: number, reps: number): TokenizeBenchRow[] {
  const text = corpus(megabytes);
  const tokenizers: [string, string, () => TextTokenizer][] = [
    [
      'stories260K (tok512, SentencePiece)',
      'ours (llama2.c format)',
      () => fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin')),
    ],
    [
      'stories260K (tok512, SentencePiece)',
      '@huggingface/tokenizers',
      () => hfFixture('sentencepiece-tok512'),
    ],
    [
      'SmolLM2 (49k byte-level BPE)',
      '@huggingface/tokenizers',
      () => hfFixture('smollm-135m-instruct'),
    ],
  ];
  return tokenizers.map(([tokenizer, engine, make]) => {
    const t = make();
    let seconds = Infinity;
    let tokens = 0;
    for (let r = 0; r < reps; r++) {
      const start = performance.now();
      const prepared = prepareDataset(text, 'bench.txt', t, {
        seqLen: 128,
        validationFraction: 0.1,
        seed: 0,
      });
      seconds = Math.min(seconds, (performance.now() - start) / 1000);
      tokens = prepared.summary.tokens;
    }
    return { tokenizer, engine, megabytes: text.length / 1e6, seconds, tokens };
  });
}
