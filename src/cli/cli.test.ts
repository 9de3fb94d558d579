import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadModelFromPath } from '../model/load-node.ts';
import { writeSafetensors } from '../model/safetensors.ts';
import { writeFiles } from './files.ts';
import { BUILT_IN, FIXTURES } from '../testing/fixtures.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

function cli(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return promisify(execFile)(process.execPath, [BIN, ...args], { env }).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

const STORIES = `${BUILT_IN}stories260K.bin`;
const TINY_HF = `${FIXTURES}models/hf/quatricmorph_tiny-llama-2shard`;
/** llama2.c's published greedy story of stories260K. */
const GREEDY_STORY = `${FIXTURES}models/llama2c/stories260K.greedy200.txt`;
const story = () => readFileSync(GREEDY_STORY, 'utf8');

describe('lora-studio generate', () => {
  it('prints exactly llama2.c’s greedy story on stdout (tokenizer found beside the model)', async () => {
    const { code, stdout, stderr } = await cli([
      'generate',
      '--model',
      STORIES,
      '--max-new-tokens',
      '200',
    ]);
    expect(code).toBe(0);
    expect(stdout).toBe(story());
    expect(stderr).toMatch(/\[200 tokens in [\d.]+ s, [\d.]+ tokens\/s\]/);
  });

  it('explains what is missing or wrong', async () => {
    expect((await cli(['generate'])).stderr).toMatch(/--model PATH is required/);
    expect((await cli(['generate', '--model', STORIES, '--temperature', 'hot'])).stderr).toMatch(
      /--temperature must be a number/,
    );
    // The sharded fixture has no tokenizer; SmolLM's is far too large for its 64-token vocabulary.
    expect((await cli(['generate', '--model', TINY_HF])).stderr).toMatch(
      /needs its tokenizer \(tokenizer.json, tok512.bin, tokenizer.bin\)/,
    );
    const smollm = `${FIXTURES}tokenizers/smollm-135m-instruct/tokenizer.json`;
    expect((await cli(['generate', '--model', TINY_HF, '--tokenizer', smollm])).stderr).toMatch(
      /has 49152 tokens but the model's vocabulary is 64: it belongs to another model/,
    );
  });
});

describe('applying an adapter whose numbers are broken', () => {
  it('is refused with exit code 2 unless --force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'broken-adapter-'));
    const key = 'base_model.model.model.layers.0.self_attn.q_proj';
    writeFileSync(
      join(dir, 'adapter_model.safetensors'),
      writeSafetensors([
        { name: `${key}.lora_A.weight`, shape: [1, 64], data: new Float32Array(64).fill(0.1) },
        { name: `${key}.lora_B.weight`, shape: [64, 1], data: new Float32Array(64).fill(0.1) },
      ]),
    );
    writeFileSync(
      join(dir, 'adapter_config.json'),
      JSON.stringify({ peft_type: 'LORA', r: 1, lora_alpha: 1e308, target_modules: ['q_proj'] }),
    );
    const args = [
      'generate',
      '--model',
      STORIES,
      '--max-new-tokens',
      '3',
      '--adapter',
      dir,
      '--cpu',
    ];
    const refused = await cli(args);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /puts its update beyond float32; give --force to apply it anyway/,
    );
    const forced = await cli([...args, '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toMatch(/warning: applying anyway/);
  });
});

describe('lora-studio without a GPU', () => {
  it('generates the same story on the CPU with --cpu, or by itself where no GPU driver is found', async () => {
    const args = ['generate', '--model', STORIES, '--max-new-tokens', '200'];
    const asked = await cli([...args, '--cpu']);
    expect(asked.code).toBe(0);
    expect(asked.stdout).toBe(story());
    // A Vulkan driver list naming no driver (and LORA_STUDIO_GPU unset, which would pick one).
    const env: NodeJS.ProcessEnv = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' };
    delete env.LORA_STUDIO_GPU;
    const noDriver = await cli(args, env);
    expect(noDriver.code).toBe(0);
    expect(noDriver.stderr).toMatch(/no WebGPU device \(.*\); running on the CPU, slower/);
    expect(noDriver.stdout).toBe(story());
  });

  it('measures the same loss on the CPU', async () => {
    const data = GREEDY_STORY;
    const loss = async (...extra: string[]) => {
      const { stdout } = await cli(['perplexity', '--model', STORIES, '--data', data, ...extra]);
      return (JSON.parse(stdout) as { loss: number }).loss;
    };
    expect(await loss('--cpu')).toBeCloseTo(await loss(), 5);
    expect(await loss('--cpu', '--weights', 'f16')).toBeCloseTo(await loss('--weights', 'f16'), 5);
  });
});

describe('lora-studio perplexity', () => {
  it('prints the mean loss of a text as JSON', async () => {
    const data = GREEDY_STORY;
    const { code, stdout } = await cli(['perplexity', '--model', STORIES, '--data', data]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { tokens: number; loss: number; perplexity: number };
    expect(report.tokens).toBeGreaterThan(150);
    expect(report.perplexity).toBeCloseTo(Math.exp(report.loss), 6);
    expect(report.perplexity).toBeLessThan(3);
  });

  it('keeps the weights in half precision when asked, at a small cost in loss', async () => {
    const data = GREEDY_STORY;
    const loss = async (...extra: string[]) => {
      const { stdout } = await cli(['perplexity', '--model', STORIES, '--data', data, ...extra]);
      return (JSON.parse(stdout) as { loss: number }).loss;
    };
    const [full, half] = [await loss(), await loss('--weights', 'f16')];
    expect(half).not.toBe(full);
    expect(Math.abs(half - full)).toBeLessThan(0.01 * full);
    const bad = await cli(['perplexity', '--model', STORIES, '--data', data, '--weights', 'f8']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /--weights must be one of file, f32, f16, bf16, q8_0, q4_k, nf4; got f8/,
    );
  });
});

describe('lora-studio convert', () => {
  it('writes an HF folder that generates the same story', async () => {
    const out = mkdtempSync(join(tmpdir(), 'convert-'));
    const tok = STORIES.replace('stories260K.bin', 'tok512.bin');
    expect(
      (await cli(['convert', '--llama2c', STORIES, '--out', out, '--tokenizer', tok])).code,
    ).toBe(0);
    const { stdout } = await cli(['generate', '--model', out, '--max-new-tokens', '200']);
    expect(stdout).toBe(story());
  });

  it('bakes adapters into the weights: the HF folder scores text as the model with them applied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convert-'));
    const { config } = await loadModelFromPath(STORIES);
    const adapter = join(dir, 'adapter');
    await writeFiles(
      adapter,
      randomAdapterFiles(config, {
        seed: 3,
        rank: 2,
        alpha: 4,
        range: 0.5,
        baseModel: 'stories260K.bin',
      }),
    );
    const tok = STORIES.replace('stories260K.bin', 'tok512.bin');
    const out = join(dir, 'baked');
    const args = [
      '--llama2c',
      STORIES,
      '--out',
      out,
      '--tokenizer',
      tok,
      '--adapter',
      `${adapter}:0.7`,
    ];
    expect((await cli(['convert', ...args])).code).toBe(0);
    const text = join(dir, 'text.txt');
    writeFileSync(text, story().slice(0, 600));
    const score = async (model: string[]) =>
      (
        JSON.parse((await cli(['perplexity', ...model, '--data', text, '--cpu'])).stdout) as {
          loss: number;
        }
      ).loss;
    const applied = await score(['--model', STORIES, '--adapter', `${adapter}:0.7`]);
    const plain = await score(['--model', STORIES]);
    expect(Math.abs(applied - plain)).toBeGreaterThan(0.01);
    expect(await score(['--model', out])).toBeCloseTo(applied, 4);
  });
});

describe('lora-studio CLI', () => {
  it('info --json describes the adapter, even when started without LD_LIBRARY_PATH', async () => {
    // The shim must find the Vulkan loader by itself, as it does for a user's plain shell.
    const env = { ...process.env, LD_LIBRARY_PATH: '' };
    const { code, stdout } = await cli(['info', '--json'], env);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { limits: Record<string, number>; features: string[] };
    expect(report.limits.maxBufferSize).toBeGreaterThan(0);
    expect(report.features.length).toBeGreaterThan(0);
  });

  it('info prints the adapter and its limits as text', async () => {
    const { code, stdout } = await cli(['info']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^adapter {6}\S/m);
    expect(stdout).toMatch(/maxStorageBufferBindingSize +\d+/);
  });

  it('refuses unknown commands and options with exit code 2', async () => {
    const unknownCommand = await cli(['toString']);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toMatch(/unknown command "toString"/);
    const unknownOption = await cli(['info', '--bogus']);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/unknown option --bogus/);
  });
});
