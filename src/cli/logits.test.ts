import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIXTURES, fixtureJson } from '../testing/fixtures.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

function cli(args: string[]) {
  return promisify(execFile)(process.execPath, [BIN, ...args], { maxBuffer: 1 << 26 }).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

interface Expected {
  input_ids: number[][];
  logits: number[][][];
  logits_last_row: number[][];
}

/** max |a − e| / max |e| over the rows. */
function relativeError(actual: number[][], expected: number[][]): number {
  let [worst, scale] = [0, 0];
  expected.forEach((row, r) => {
    row.forEach((e, i) => {
      worst = Math.max(worst, Math.abs(actual[r][i] - e));
      scale = Math.max(scale, Math.abs(e));
    });
  });
  return worst / scale;
}

describe('lora-studio logits', () => {
  const dir = `${FIXTURES}models/arch/gpt2`;
  const expected = fixtureJson('models/arch/gpt2/expected_with_lora.json') as Expected;
  const ids = expected.input_ids.map((row) => row.join(','));

  it('prints batch × positions × vocab for ids fed as given, with an adapter', async () => {
    const { code, stdout } = await cli([
      'logits',
      '--model',
      dir,
      '--adapter',
      `${dir}/lora`,
      '--ids',
      ids[0],
      '--ids',
      ids[1],
    ]);
    expect(code).toBe(0);
    const { logits } = JSON.parse(stdout) as { logits: number[][][] };
    expect(logits.map((row) => row.length)).toEqual([16, 16]);
    for (const b of [0, 1]) {
      expect(relativeError(logits[b].slice(0, 8), expected.logits[b])).toBeLessThan(1e-4);
      expect(relativeError([logits[b][15]], [expected.logits_last_row[b]])).toBeLessThan(1e-4);
    }
  });

  it('--positions last on the CPU reference gives the last row', async () => {
    const { code, stdout } = await cli([
      'logits',
      '--model',
      dir,
      '--adapter',
      `${dir}/lora:1`,
      '--ids',
      ids[1],
      '--positions',
      'last',
      '--cpu',
    ]);
    expect(code).toBe(0);
    const { logits } = JSON.parse(stdout) as { logits: number[][][] };
    expect(logits[0]).toHaveLength(1);
    expect(relativeError(logits[0], [expected.logits_last_row[1]])).toBeLessThan(1e-6);
  });

  it('refuses ids outside the vocabulary and missing options with exit code 2', async () => {
    for (const args of [
      ['logits', '--model', dir, '--ids', '1,320'],
      ['logits', '--model', dir, '--ids', '1,x'],
      ['logits', '--model', dir],
      ['logits', '--model', dir, '--ids', '1', '--positions', 'first'],
    ]) {
      const { code, stderr } = await cli(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
