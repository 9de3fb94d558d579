// `--model file.gguf` through the CLI: a quantized llama.cpp file runs (its own tokenizer, its
// weights dequantized on loading) and matches llama.cpp's dequantized-f32 logits.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIXTURES, fixtureJson } from '../testing/fixtures.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

interface Expected {
  input_ids: number[][];
  dequantized_f32_reference: { logits_last_row: number[][] };
}

describe('lora-studio logits --model FILE.gguf', () => {
  it('runs a Q4_0 GGUF on the CPU reference and exits 0', async () => {
    const dir = `${FIXTURES}models/gguf/llama`;
    const expected = fixtureJson('models/gguf/llama/expected-Q4_0.json') as Expected;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        BIN,
        'logits',
        '--model',
        `${dir}/model-Q4_0.gguf`,
        '--ids',
        expected.input_ids[0].join(','),
        '--positions',
        'last',
        '--cpu',
      ],
      { maxBuffer: 1 << 26 },
    );
    const { logits } = JSON.parse(stdout) as { logits: number[][][] };
    const want = expected.dequantized_f32_reference.logits_last_row[0];
    const worst = Math.max(...want.map((e, i) => Math.abs(logits[0][0][i] - e)));
    expect(worst).toBeLessThan(1e-4);
  });
});
