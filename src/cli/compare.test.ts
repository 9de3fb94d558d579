// `lora-studio compare` as a subprocess, on the real fixture adapters.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { AdapterComparison } from '../analysis/diagnostics.ts';
import { FIXTURES } from '../testing/fixtures.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const QWEN = `${FIXTURES}adapters/qwen2.5-0.5b-instruct/`;
const R6 = `${QWEN}MatthewZhang473_20251017_101834_r6_alpha32`;
const R12 = `${QWEN}MatthewZhang473_20251017_140153_r12_alpha32`;
const SMOLLM = `${FIXTURES}adapters/smollm-135m-instruct/medai_TFM-HITESH_5epochs`;

function cli(args: string[]) {
  return promisify(execFile)(process.execPath, [BIN, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

describe('lora-studio compare', () => {
  it('prints the comparison of two adapters as JSON', async () => {
    const { code, stdout } = await cli(['compare', R6, R12]);
    expect(code).toBe(0);
    const c = JSON.parse(stdout) as AdapterComparison;
    expect(c.adapters.map((a) => [a.name, a.baseModel, a.rank])).toEqual([
      [R6, 'Qwen/Qwen2.5-0.5B-Instruct', 6],
      [R12, 'Qwen/Qwen2.5-0.5B-Instruct', 12],
    ]);
    expect(c.modules).toHaveLength(48);
    expect(c.moduleTypes).toEqual(['q_proj', 'v_proj']);
    expect(c.layers).toBe(24);
    const [pair] = c.pairs;
    expect(c.similarity).toEqual([
      [1, pair.cosine],
      [pair.cosine, 1],
    ]);
    expect(pair.meanOverlap).toBeGreaterThan(0);
    expect(pair.meanOverlap).toBeLessThanOrEqual(1);
    expect(pair.signConflict).toBeGreaterThan(0);
    expect(pair.signConflict).toBeLessThan(1);
    expect(pair.grid.flat().every((cosine) => cosine !== null)).toBe(true);
    for (const m of c.modules)
      expect(m.adapters.map((a) => a.singularValues.length)).toEqual([6, 12]);
  });

  it('compares on the CPU with --cpu, as on the GPU', async () => {
    const [onGpu, onCpu] = await Promise.all(
      [
        [R6, R12],
        ['--cpu', R6, R12],
      ].map(async (args) => {
        const { stdout } = await cli(['compare', ...args]);
        return JSON.parse(stdout) as AdapterComparison;
      }),
    );
    expect(onCpu.similarity[0][1]).toBeCloseTo(onGpu.similarity[0][1], 6);
    expect(onCpu.pairs[0].signConflict).toBeCloseTo(onGpu.pairs[0].signConflict!, 3);
    expect(onCpu.pairs[0].meanOverlap).toBeCloseTo(onGpu.pairs[0].meanOverlap!, 6);
  });

  it('explains what is missing or wrong', async () => {
    const none = await cli(['compare']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/lora-studio compare: at least one adapter folder is required/);
    const mixed = await cli(['compare', R6, SMOLLM]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/the adapters are for different base models/);
    expect((await cli(['help'])).stdout).toMatch(/compare +compare adapters/);
  });
});
