// `--weights q4_k` (quantize on load) through the CLI, on the llama GGUF fixture's HF folder
// (hidden 256: Q4_K's rows): logits on the GPU and on the CPU reference agree, and generate runs.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../testing/fixtures.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const MODEL = `${FIXTURES}models/gguf/llama/hf`;

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args], {
    maxBuffer: 1 << 26,
  });
  return stdout;
}

describe('lora-studio --weights q4_k', () => {
  it('logits: the GPU and the CPU reference hold the same quantized values', async () => {
    const args = ['logits', '--model', MODEL, '--weights', 'q4_k', '--ids', '1,17,200,5,99'];
    const [gpu, cpu] = await Promise.all([cli(...args), cli(...args, '--cpu')]);
    const last = (out: string) => (JSON.parse(out) as { logits: number[][][] }).logits[0].at(-1)!;
    const [g, c] = [last(gpu), last(cpu)];
    const scale = Math.max(...c.map(Math.abs));
    expect(Math.max(...g.map((v, i) => Math.abs(v - c[i]))) / scale).toBeLessThan(1e-5);
  });

  it('generate: greedy text is the same on the GPU and the CPU reference', async () => {
    const args = ['generate', '--model', MODEL, '--weights', 'q4_k', '--prompt', 'a'];
    const [gpu, cpu] = await Promise.all([
      cli(...args, '--max-new-tokens', '6'),
      cli(...args, '--max-new-tokens', '6', '--cpu'),
    ]);
    expect(gpu).toBe(cpu);
  });
});
