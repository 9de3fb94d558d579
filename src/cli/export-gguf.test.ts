// `lora-studio export-gguf` as a subprocess: the file it writes is the one ggufLoraFile makes for
// the base model --model names (whose layout src/adapters/gguf.test.ts reads back), a GGUF model
// included, with an ollama Modelfile on --modelfile; without --model, --heads / --kv-heads give
// the same file for a Llama base as its config would; what is missing or wrong is explained. The
// file it writes, given back to `logits` as --adapter, gives the PEFT adapter's logits.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufLoraFile } from '../adapters/gguf.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import type { GgufValue } from '../model/gguf/read.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { fixture, fixtureJson, FIXTURES } from '../testing/fixtures.ts';
import { writeFiles } from './files.ts';
import { ollamaModelfile, stopTexts } from './export-gguf.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const NAME = 'medai_TFM-HITESH_5epochs';
const DIR = `smollm-135m-instruct/${NAME}`;
// SmolLM-135M: num_attention_heads 9, num_key_value_heads 3.
const HEADS = ['--heads', '9', '--kv-heads', '3'];

function run(command: string, args: string[]) {
  return promisify(execFile)(process.execPath, [BIN, command, ...args], {
    maxBuffer: 64 << 20,
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

const cli = (args: string[]) => run('export-gguf', args);

/** `logits --cpu` (the f64 reference) of a few ids, every position. */
async function logitsOf(model: string, adapter: string): Promise<number[][][]> {
  const { code, stdout, stderr } = await run('logits', [
    '--cpu',
    '--model',
    model,
    '--adapter',
    adapter,
    '--ids',
    '1,17,42,99,3',
  ]);
  expect(code, stderr).toBe(0);
  return (JSON.parse(stdout) as { logits: number[][][] }).logits;
}

const GGUF_LLAMA = `${FIXTURES}models/gguf/llama/`;

/**
 * A random rank-4 LoRA on q, k, v and down of both layers of the GGUF Llama fixture (8 heads, 2
 * KV heads: q and k rows are permuted in its file), as PEFT files in `dir`.
 */
async function ggufLlamaAdapter(dir: string): Promise<void> {
  const config = parseHfConfig(fixtureJson('models/gguf/llama/hf/config.json'));
  const files = randomAdapterFiles(config, {
    seed: 3,
    rank: 4,
    alpha: 8,
    range: 0.2,
    baseModel: 'gguf-llama',
    modules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'],
    layers: [0, 1],
  });
  await writeFiles(dir, files);
}

function adapterAt(dir: string) {
  const files = new Map(
    ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, fixture(`${dir}/${f}`)]),
  );
  return readPeftAdapter(files, dir);
}

describe('lora-studio export-gguf', () => {
  let tmp = '';
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'lora-studio-gguf-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it.each([
    ['qwen3', 42],
    ['gpt2', 16],
  ])(
    'writes the GGUF LoRA of the %s fixture for its --model and prints a JSON summary',
    async (arch, tensors) => {
      const model = `models/arch/${arch}`;
      const out = join(tmp, 'sub', `${arch}.gguf`);
      const { code, stdout, stderr } = await cli([
        `${FIXTURES}${model}/lora`,
        '--out',
        out,
        '--model',
        `${FIXTURES}${model}`,
      ]);
      expect(code, stderr).toBe(0);
      const expected = ggufLoraFile(adapterAt(`${model}/lora`), {
        name: 'lora',
        config: parseHfConfig(fixtureJson(`${model}/config.json`)),
      });
      expect((await readFile(out)).equals(expected.bytes)).toBe(true);
      expect(JSON.parse(stdout)).toEqual({
        out,
        bytes: expected.bytes.length,
        tensors,
        alpha: 8,
        rescaled: [],
      });
    },
  );

  it('without --model, --heads and --kv-heads export for a Llama base as its config would', async () => {
    const out = join(tmp, 'smollm.gguf');
    const { code, stdout, stderr } = await cli([
      `${FIXTURES}adapters/${DIR}`,
      '--out',
      out,
      ...HEADS,
    ]);
    expect(code, stderr).toBe(0);
    // SmolLM-135M's config.json, in the values the export reads.
    const config = parseHfConfig({
      model_type: 'llama',
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      vocab_size: 49152,
      tie_word_embeddings: true,
    });
    const expected = ggufLoraFile(adapterAt(`adapters/${DIR}`), { name: NAME, config });
    // Buffer.equals: vitest's deep equality takes seconds on megabytes.
    expect((await readFile(out)).equals(expected.bytes)).toBe(true);
    expect(JSON.parse(stdout)).toEqual({
      out,
      bytes: expected.bytes.length,
      tensors: 120,
      alpha: 32,
      rescaled: [],
    });
  });

  it('writes for a GGUF base the file its HF source gives, with an ollama Modelfile on --modelfile', async () => {
    const adapter = join(tmp, 'gguf-llama-lora');
    await ggufLlamaAdapter(adapter);
    const fromHf = join(tmp, 'hf', 'lora.gguf');
    expect((await cli([adapter, '--out', fromHf, '--model', `${GGUF_LLAMA}hf`])).code).toBe(0);
    const out = join(tmp, 'ollama', 'lora.gguf');
    const model = `${GGUF_LLAMA}model-Q4_K_M.gguf`;
    const { code, stdout, stderr } = await cli([
      adapter,
      '--model',
      model,
      '--out',
      out,
      '--modelfile',
    ]);
    expect(code, stderr).toBe(0);
    expect((await readFile(out)).equals(await readFile(fromHf))).toBe(true);
    const modelfile = join(tmp, 'ollama', 'Modelfile');
    expect(JSON.parse(stdout)).toMatchObject({ out, tensors: 16, alpha: 8, modelfile });
    // The fixture's only end-of-generation token is EOS 278; it has no chat template.
    expect(await readFile(modelfile, 'utf8')).toBe(
      `FROM ${model}\nADAPTER ./lora.gguf\nPARAMETER stop "<|end_of_text|>"\n`,
    );
  });

  it('gives the file back to logits as --adapter: the PEFT adapter’s logits, on an HF and a GGUF base', async () => {
    const llama = `${FIXTURES}models/arch/llama`;
    const out = join(tmp, 'arch-llama.gguf');
    expect((await cli([`${llama}/lora`, '--out', out, '--model', llama])).code).toBe(0);
    expect(await logitsOf(llama, `${out}:0.5`)).toEqual(await logitsOf(llama, `${llama}/lora:0.5`));
    const adapter = join(tmp, 'gguf-llama-lora-2');
    await ggufLlamaAdapter(adapter);
    const model = `${GGUF_LLAMA}model-f32.gguf`;
    const lora = join(tmp, 'gguf-llama-2.gguf');
    expect((await cli([adapter, '--out', lora, '--model', model])).code).toBe(0);
    const peft = await logitsOf(model, adapter);
    expect(await logitsOf(model, lora)).toEqual(peft);
    // The adapter changes them: the comparison is not of the base model with itself.
    const base = await run('logits', ['--cpu', '--model', model, '--ids', '1,17,42,99,3']);
    expect(JSON.parse(base.stdout)).not.toEqual({ logits: peft });
  });

  it('stop tokens: EOS and EOT texts of control tokens, quoted as ollama reads them', () => {
    const tokens = ['a', '<|end|>', 'Ġx', '<|eot_id|>', 'say "stop"'];
    const metadata = (eos: number, eot?: number, types = [1, 3, 1, 3, 4]) =>
      new Map<string, GgufValue>([
        ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
        [
          'tokenizer.ggml.token_type',
          { type: 'array', itemType: 'i32', value: Int32Array.from(types) },
        ],
        ['tokenizer.ggml.eos_token_id', { type: 'u32', value: eos }],
        ...(eot === undefined
          ? []
          : [['tokenizer.ggml.eot_token_id', { type: 'u32', value: eot }] as [string, GgufValue]]),
      ]);
    expect(stopTexts(metadata(1, 3))).toEqual(['<|end|>', '<|eot_id|>']);
    expect(stopTexts(metadata(1, 1))).toEqual(['<|end|>']);
    // An ordinary byte-level token's stored text is not what the model writes: left out.
    expect(stopTexts(metadata(2))).toEqual([]);
    expect(stopTexts(metadata(9))).toEqual([]);
    expect(ollamaModelfile('/models/base model.gguf', './lora.gguf', metadata(1, 4))).toBe(
      'FROM "/models/base model.gguf"\nADAPTER ./lora.gguf\nPARAMETER stop "<|end|>"\nPARAMETER stop """say "stop""""\n',
    );
  });

  it('explains what is missing or wrong', async () => {
    const dir = `${FIXTURES}adapters/${DIR}`;
    const out = join(tmp, 'x.gguf');
    const noModel = await cli([dir, '--out', out]);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(
      /adapts q_proj, whose rows llama.cpp permutes per attention head: pass --model MODEL_DIR/,
    );
    expect((await cli([dir, '--out', out, '--heads', '9.5'])).stderr).toMatch(
      /--heads must be a positive integer, got 9.5/,
    );
    expect((await cli([dir, '--out', out, '--heads', '7', '--kv-heads', '3'])).stderr).toMatch(
      /--heads 7 and --kv-heads 3 do not fit .*: its q_proj has 576 rows/,
    );
    expect((await cli([dir, ...HEADS])).stderr).toMatch(
      /usage: export-gguf ADAPTER_DIR --out FILE.gguf --model MODEL_DIR/,
    );
    const arch = `${FIXTURES}models/arch/`;
    expect((await cli([dir, '--out', out, '--model', `${arch}llama`, ...HEADS])).stderr).toMatch(
      /--heads and --kv-heads are for exporting without --model/,
    );
    const gpt2 = await cli([`${arch}gpt2/lora`, '--out', out]);
    expect(gpt2.code).toBe(2);
    expect(gpt2.stderr).toMatch(
      /transformer.h.0.attn.c_attn is not a module of a Llama model: for another family, pass --model MODEL_DIR/,
    );
    // The wrong base model, a folder without config.json, and a llama2.c checkpoint that differs.
    expect(
      (await cli([`${arch}gpt2/lora`, '--out', out, '--model', `${arch}llama`])).stderr,
    ).toMatch(/transformer.h.0.attn.c_attn: no llama.cpp llama tensor for this module/);
    expect((await cli([dir, '--out', out, '--model', tmp])).stderr).toMatch(
      /config.json: is missing: --model takes an HF model folder, a llama2.c .bin or a GGUF model file/,
    );
    expect(
      (await cli([dir, '--out', out, '--model', `${arch}llama`, '--modelfile'])).stderr,
    ).toMatch(/--modelfile needs --model FILE.gguf/);
    const lora = join(tmp, 'as-model.gguf');
    expect((await cli([`${arch}llama/lora`, '--out', lora, '--model', `${arch}llama`])).code).toBe(
      0,
    );
    expect((await cli([`${arch}llama/lora`, '--out', out, '--model', lora])).stderr).toMatch(
      /as-model.gguf: is a LoRA adapter \(general.type "adapter"\), not a model/,
    );
    const stories = fileURLToPath(new URL('../../public/models/stories260K.bin', import.meta.url));
    const llama2c = await cli([dir, '--out', out, '--model', stories]);
    expect(llama2c.code).toBe(2);
    expect(llama2c.stderr).toMatch(
      /self_attn.[qv]_proj does not fit the base model: the adapter's factors make a \d+ × 576 update, the model's weight is \d+ × 64/,
    );
  });
});
