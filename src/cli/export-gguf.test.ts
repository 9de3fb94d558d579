// `lora-studio export-gguf` as a subprocess on the real SmolLM adapter: the file it writes is
// the one ggufLoraFile makes (whose layout src/adapters/gguf.test.ts reads back), and what is
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
import { fixture, FIXTURES } from '../testing/fixtures.ts';

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

describe('lora-studio export-gguf', () => {
  let tmp = '';
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'lora-studio-gguf-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes the GGUF LoRA and prints a JSON summary', async () => {
    const out = join(tmp, 'sub', 'smollm.gguf');
    const { code, stdout, stderr } = await cli([
      `${FIXTURES}adapters/${DIR}`,
      '--out',
      out,
      ...HEADS,
    ]);
    expect(code, stderr).toBe(0);
    const files = new Map(
      ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
        f,
        fixture(`adapters/${DIR}/${f}`),
      ]),
    );
    const expected = ggufLoraFile(readPeftAdapter(files, DIR), {
      name: NAME,
      heads: 9,
      kvHeads: 3,
    });
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
    const noHeads = await cli([dir, '--out', out]);
    expect(noHeads.code).toBe(2);
    expect(noHeads.stderr).toMatch(
      /model.layers.0.self_attn.q_proj: llama.cpp permutes q_proj's rows within each attention head, so the export needs the base model's num_attention_heads \(--heads\)/,
    );
    expect((await cli([dir, '--out', out, '--heads', '9.5'])).stderr).toMatch(
      /--heads must be a positive integer, got 9.5/,
    );
    expect((await cli([dir, ...HEADS])).stderr).toMatch(
      /usage: export-gguf ADAPTER_DIR --out FILE.gguf/,
    );
    const gpt2 = await cli([`${FIXTURES}adapters/gpt2/generated-causal-c_attn`, '--out', out]);
    expect(gpt2.stderr).toMatch(/transformer.h.0.attn.c_attn: no llama.cpp Llama tensor/);
  });
});
