// `lora-studio export-gguf` as a subprocess: the file it writes is the one ggufLoraFile makes for
// the base model --model names (whose layout src/adapters/gguf.test.ts reads back); without
// --model, --heads / --kv-heads give the same file for a Llama base as its config would; what is
// missing or wrong is explained.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufLoraFile } from '../adapters/gguf.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { fixture, fixtureJson, FIXTURES } from '../testing/fixtures.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const NAME = 'medai_TFM-HITESH_5epochs';
const DIR = `smollm-135m-instruct/${NAME}`;
// SmolLM-135M: num_attention_heads 9, num_key_value_heads 3.
const HEADS = ['--heads', '9', '--kv-heads', '3'];

function cli(args: string[]) {
  return promisify(execFile)(process.execPath, [BIN, 'export-gguf', ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
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
      /config.json: is missing: --model takes an HF model folder or a llama2.c .bin/,
    );
    const stories = fileURLToPath(new URL('../../public/models/stories260K.bin', import.meta.url));
    const llama2c = await cli([dir, '--out', out, '--model', stories]);
    expect(llama2c.code).toBe(2);
    expect(llama2c.stderr).toMatch(
      /self_attn.[qv]_proj does not fit the base model: the adapter's factors make a \d+ × 576 update, the model's weight is \d+ × 64/,
    );
  });
});
