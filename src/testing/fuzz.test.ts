// Hostile input, generated: every reader of untrusted files gets seeded corruptions of a valid
// file (flipped, inserted and cut bytes; absurd sizes; hostile regexes; bombs) and must either
// read it or refuse it as bad input (exit code 2 in the CLI: FormatError, RangeError or a usage
// error) — never another exception, within a time bound and without a memory blow-up.
import { strToU8, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { adapterFiles } from '../adapters/import.ts';
import { readForInspection } from '../analysis/inspect.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { exitCode } from '../cli/exit.ts';
import { parseMergekitYaml } from '../merge/mergekit.ts';
import { readRecipe } from '../merge/recipe.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { hfTokenizer } from '../model/tokenizer.ts';
import { decodeUtf8Text, parseDataset } from '../train/data.ts';
import { builtIn, fixture, fixtureJson } from './fixtures.ts';
import { seededRandom } from './random.ts';

const CASES = 40;
const TIME_BOUND_MS = 3000;
const MEMORY_BOUND = 512 * 2 ** 20;

/** Runs a reader on hostile input: it reads it, or refuses it as bad input, quickly. */
function expectBounded(what: string, read: () => unknown): void {
  const start = performance.now();
  const before = process.memoryUsage().rss;
  try {
    read();
  } catch (e) {
    expect(exitCode(e), `${what}: ${String(e)}`).toBe(2);
    expect((e as Error).message.length, what).toBeGreaterThan(0);
  }
  expect(performance.now() - start, `${what}: time`).toBeLessThan(TIME_BOUND_MS);
  expect(process.memoryUsage().rss - before, `${what}: memory`).toBeLessThan(MEMORY_BOUND);
}

/** Seeded corruptions of a file: bytes flipped, a run inserted or cut, the tail cut off. */
function corruptions(bytes: Uint8Array, seed: number, count = CASES): Uint8Array[] {
  const random = seededRandom(seed);
  const at = () => Math.floor(random() * bytes.length);
  return Array.from({ length: count }, (_, i) => {
    const out = bytes.slice();
    switch (i % 4) {
      case 0:
        for (let k = 0; k < 1 + (i % 7); k++) out[at()] = Math.floor(random() * 256);
        return out;
      case 1:
        return out.subarray(0, at());
      case 2: {
        const p = at();
        const junk = Uint8Array.from({ length: 1 + (i % 50) }, () => Math.floor(random() * 256));
        return Uint8Array.from([...out.subarray(0, p), ...junk, ...out.subarray(p)]);
      }
      default: {
        const p = at();
        return Uint8Array.from([...out.subarray(0, p), ...out.subarray(p + 1 + (i % 40))]);
      }
    }
  });
}

/** Corruptions of a JSON value's text, plus structural ones: wrong types and absurd numbers. */
function jsonCorruptions(value: unknown, seed: number): Uint8Array[] {
  const text = strToU8(JSON.stringify(value));
  const random = seededRandom(seed);
  const structural: unknown[] = [null, [], 'x', 7, {}];
  if (typeof value === 'object' && value !== null && !Array.isArray(value))
    for (const key of Object.keys(value).slice(0, 12)) {
      const absurd = [null, -1, 0, 1e308, 10_000_000, 'x', [], { a: 1 }, NaN][
        Math.floor(random() * 9)
      ];
      structural.push({ ...value, [key]: absurd });
    }
  return [...corruptions(text, seed), ...structural.map((v) => strToU8(JSON.stringify(v)))];
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const parseJson = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(decode(bytes));
  } catch {
    return decode(bytes);
  }
};

describe('fuzzed model files', () => {
  it('safetensors headers', () => {
    const valid = writeSafetensors([
      { name: 'a.weight', shape: [3, 4], data: new Float32Array(12).fill(1) },
      { name: 'b.bias', shape: [4], data: new Float32Array(4) },
    ]);
    for (const [i, bytes] of corruptions(valid, 1).entries())
      expectBounded(`safetensors #${i}`, () => {
        const st = readSafetensors(bytes, 'model.safetensors');
        for (const name of st.header.tensors.keys()) st.read(name);
      });
    // An 8-byte length announcing a header of many gigabytes.
    const huge = valid.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expectBounded('huge header', () => readSafetensors(huge, 'model.safetensors'));
  });

  it('config.json', () => {
    const config = fixtureJson('models/hf/quatricmorph_tiny-llama-2shard/config.json');
    for (const [i, bytes] of jsonCorruptions(config, 2).entries())
      expectBounded(`config #${i}`, () => parseHfConfig(parseJson(bytes)));
  });

  it('llama2.c checkpoints and tokenizers', () => {
    // The header and the first weights carry the sizes: corrupt those, not the 1 MB tail.
    const model = builtIn('stories260K.bin');
    for (const [i, head] of corruptions(model.subarray(0, 64), 3).entries())
      expectBounded(`llama2.c #${i}`, () =>
        readLlama2c(Uint8Array.from([...head, ...model.subarray(64)]), 'stories260K.bin'),
      );
    for (const [i, bytes] of corruptions(builtIn('tok512.bin'), 4).entries())
      expectBounded(`tok512 #${i}`, () => readLlama2cTokenizer(bytes, 512, 'tok512.bin'));
  });

  it('tokenizer.json, including catastrophic regexes', () => {
    const json = fixtureJson('tokenizers/sentencepiece-tok512/tokenizer.json') as object;
    for (const [i, bytes] of jsonCorruptions(json, 5).entries())
      expectBounded(`tokenizer #${i}`, () => hfTokenizer(parseJson(bytes)).encode('Hello there'));
    const hostile = ['^(\\w+\\s?)*$', '(a+)+$', '(\\s*)*x', '((ab)*c)+d', '(.*a){12}'];
    for (const regex of hostile) {
      const normalizer = { type: 'Replace', pattern: { Regex: regex }, content: '' };
      expectBounded(`regex ${regex}`, () =>
        hfTokenizer({ ...json, normalizer }).encode(`${'word '.repeat(40)}!`),
      );
    }
  });
});

describe('fuzzed adapters and their containers', () => {
  const dir = 'adapters/qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32';
  const config = fixture(`${dir}/adapter_config.json`);
  const weights = fixture(`${dir}/adapter_model.safetensors`);

  it('adapter_config.json and adapter_model.safetensors', () => {
    const configs = jsonCorruptions(JSON.parse(decode(config)), 6);
    // Absurd scales and non-finite values are readable; applying them is guarded elsewhere.
    for (const [i, bytes] of configs.entries()) {
      const files = new Map([
        ['adapter_config.json', bytes],
        ['adapter_model.safetensors', weights],
      ]);
      expectBounded(`adapter config #${i}`, () => readPeftAdapter(files, 'x'));
      expectBounded(`inspect config #${i}`, () => readForInspection(files, 'x'));
    }
    // The weights' header (first few KB) is where structure lives.
    const headerLength = Number(new DataView(weights.buffer).getBigUint64(0, true));
    for (const [i, head] of corruptions(weights.subarray(0, 8 + headerLength), 7).entries()) {
      const bytes = Uint8Array.from([...head, ...weights.subarray(8 + headerLength)]);
      const files = new Map([
        ['adapter_config.json', config],
        ['adapter_model.safetensors', bytes],
      ]);
      expectBounded(`adapter weights #${i}`, () => readPeftAdapter(files, 'x'));
    }
  });

  it('zips: corrupt, path traversal, bombs', () => {
    const zip = zipSync({
      'a/adapter_config.json': config,
      'a/adapter_model.safetensors': weights,
    });
    for (const [i, bytes] of corruptions(zip, 8, 20).entries())
      expectBounded(`zip #${i}`, () => adapterFiles([{ name: 'x.zip', bytes }]));
    const traversal = zipSync({
      '../../etc/adapter_config.json': config,
      '/abs/adapter_model.safetensors': weights,
    });
    // Only base names are used: nothing is written, so a path cannot escape anywhere.
    expectBounded('traversal', () => adapterFiles([{ name: 't.zip', bytes: traversal }]));
    const bomb = zipSync({ 'adapter_model.safetensors': new Uint8Array(64 << 20) });
    expectBounded('bomb', () =>
      adapterFiles([{ name: 'bomb.zip', bytes: bomb }], { maxBytes: 16 << 20 }),
    );
  });
});

describe('fuzzed merge inputs and training data', () => {
  it('mergekit YAML, alias bombs included', () => {
    const yaml = [
      'merge_method: ties',
      'models:',
      '  - model: ./a',
      '    parameters: { weight: [0, 0.5, 1], density: 0.5 }',
      '  - model: ./b',
      '    parameters: { weight: 0.7 }',
      'parameters: { normalize: true }',
    ].join('\n');
    for (const [i, bytes] of corruptions(strToU8(yaml), 9).entries())
      expectBounded(`yaml #${i}`, () => parseMergekitYaml(decode(bytes)));
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      ...Array.from({ length: 9 }, (_, k) => {
        const prev = String.fromCharCode(97 + k);
        const name = String.fromCharCode(98 + k);
        return `${name}: &${name} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`;
      }),
      'merge_method: ties',
    ].join('\n');
    expectBounded('alias bomb', () => parseMergekitYaml(bomb));
  });

  it('merge recipes', () => {
    const recipe = {
      created_with: 'LoRA Studio',
      spec: { method: 'ties_svd', adapters: [{ id: 'a', weight: 1 }], density: 0.5 },
    };
    for (const [i, bytes] of jsonCorruptions(recipe, 10).entries())
      expectBounded(`recipe #${i}`, () => readRecipe(decode(bytes), 'merge_recipe.json'));
  });

  it('training data: random bytes, invalid UTF-8, JSONL', () => {
    const random = seededRandom(11);
    for (let i = 0; i < 10; i++) {
      const bytes = Uint8Array.from({ length: 20_000 }, () => Math.floor(random() * 256));
      expectBounded(`random bytes #${i}`, () =>
        parseDataset(decodeUtf8Text(bytes, 'd.txt'), 'd.txt'),
      );
    }
    const jsonl = strToU8(
      [{ prompt: 'Q: 2+2?', completion: ' 4' }, { messages: [{ role: 'user', content: 'hi' }] }]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    for (const [i, bytes] of corruptions(jsonl, 12).entries())
      expectBounded(`jsonl #${i}`, () => parseDataset(decode(bytes), 'd.jsonl'));
  });
});
