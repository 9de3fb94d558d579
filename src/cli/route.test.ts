// `lora-studio route` end to end on the built-in model: a learned-scales router is exactly the
// plain composition at its learned weights (logits through --router against --adapter A:w B:w), a
// token router and trained experts write folders that generate/perplexity/logits run, and bad
// input — a changed adapter, a corrupt router.json, wrong options — exits 2 with one line.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModelFromPath } from '../model/load-node.ts';
import { BUILT_IN } from '../testing/fixtures.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';
import { writeFiles } from './files.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const STORIES = `${BUILT_IN}stories260K.bin`;

function cli(args: string[]) {
  return promisify(execFile)(process.execPath, [BIN, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

const dir = mkdtempSync(join(tmpdir(), 'route-'));
const zimmy = join(dir, 'zimmy');
const snorp = join(dir, 'snorp');
const data = join(dir, 'stories.txt');
const common = ['--model', STORIES, '--data', data, '--seq-len', '32', '--eval-every', '0'];

/** `bake-router` of a router folder over the test's data. */
const bakeRouter = (router: string, out: string) =>
  cli([
    'bake-router',
    '--router',
    router,
    '--model',
    STORIES,
    '--data',
    data,
    '--seq-len',
    '32',
    '--out',
    out,
  ]);

async function logits(args: string[]): Promise<number[][][]> {
  const { code, stdout, stderr } = await cli(['logits', '--model', STORIES, ...args]);
  expect(code, stderr).toBe(0);
  return (JSON.parse(stdout) as { logits: number[][][] }).logits;
}

beforeAll(async () => {
  const { config } = await loadModelFromPath(STORIES);
  const adapter = (seed: number, modules?: string[]) =>
    randomAdapterFiles(config, {
      seed,
      rank: 2,
      alpha: 4,
      range: 0.2,
      baseModel: 'stories260K',
      modules,
    });
  await writeFiles(zimmy, adapter(1));
  // Fewer modules than the other: its block is empty where it does not adapt.
  await writeFiles(snorp, adapter(2, ['q_proj', 'v_proj', 'down_proj']));
  const text = readFileSync(`${BUILT_IN}../datasets/zimmy-stories.txt`, 'utf8').slice(0, 4000);
  writeFileSync(data, text);
});

describe('lora-studio route', () => {
  it('learned scales: the router is the plain composition at the learned weights, to f32', async () => {
    const out = join(dir, 'scales');
    const { code, stdout, stderr } = await cli([
      'route',
      '--mode',
      'scales',
      '--adapters',
      zimmy,
      `${snorp}:0.5`,
      ...common,
      '--steps',
      '3',
      '--out',
      out,
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as {
      scales: { all: number[] };
      history: { step: number; loss?: number }[];
      experts: string[];
    };
    expect(report.experts).toEqual(['zimmy', 'snorp']);
    expect(report.history.filter((p) => p.loss !== undefined)).toHaveLength(3);
    const [w1, w2] = report.scales.all;
    // Trained away from where they started (1 and 0.5).
    expect(Math.abs(w1 - 1) + Math.abs(w2 - 0.5)).toBeGreaterThan(1e-4);
    const ids = ['--ids', '1,400,30,12,77', '--positions', 'all'];
    const routed = await logits(['--router', out, ...ids]);
    const composed = await logits([
      '--adapter',
      `${zimmy}:${w1}`,
      '--adapter',
      `${snorp}:${w2}`,
      ...ids,
    ]);
    const base = await logits(ids);
    let diff = 0;
    let moved = 0;
    routed[0].forEach((row, t) => {
      row.forEach((v, i) => {
        diff = Math.max(diff, Math.abs(v - composed[0][t][i]));
        moved = Math.max(moved, Math.abs(v - base[0][t][i]));
      });
    });
    expect(diff).toBeLessThan(1e-4);
    expect(moved).toBeGreaterThan(1e-2);

    // Baked, its gates are its scales: the plain LoRA is the same model.
    const baked = join(dir, 'scales-baked');
    const bake = await bakeRouter(out, baked);
    expect(bake.code, bake.stderr).toBe(0);
    const summary = JSON.parse(bake.stdout) as { routed_loss: number; baked_loss: number };
    expect(Math.abs(summary.baked_loss - summary.routed_loss)).toBeLessThan(1e-4);
    const plain = await logits(['--adapter', baked, ...ids]);
    plain[0].forEach((row, t) => {
      row.forEach((v, i) => {
        expect(Math.abs(v - routed[0][t][i])).toBeLessThan(1e-4);
      });
    });
  });

  it('token routing: writes a router folder generate and perplexity run; a changed adapter is refused', async () => {
    const out = join(dir, 'token');
    const { code, stdout, stderr } = await cli([
      'route',
      '--mode',
      'token',
      '--top-k',
      '1',
      '--adapters',
      zimmy,
      snorp,
      ...common,
      '--steps',
      '2',
      '--out',
      out,
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { top_k: number; validation_token_shares: number[] };
    expect(report.top_k).toBe(1);
    expect(report.validation_token_shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const json = JSON.parse(readFileSync(join(out, 'router.json'), 'utf8')) as {
      mode: string;
      experts: { name: string; path: string; sha256: string }[];
    };
    expect(json.mode).toBe('token');
    expect(json.experts.map((e) => e.path)).toEqual(['../zimmy', '../snorp']);
    const generated = await cli([
      'generate',
      '--model',
      STORIES,
      '--router',
      out,
      '--max-new-tokens',
      '8',
    ]);
    expect(generated.code, generated.stderr).toBe(0);
    expect(generated.stdout.trim().length).toBeGreaterThan(0);
    const ppl = await cli(['perplexity', '--model', STORIES, '--router', out, '--data', data]);
    expect(ppl.code, ppl.stderr).toBe(0);
    expect((JSON.parse(ppl.stdout) as { loss: number }).loss).toBeGreaterThan(0);
    // Baked by its mean gates: a plain LoRA, and what per-token choice was worth, measured.
    const bake = await bakeRouter(out, join(dir, 'token-baked'));
    expect(bake.code, bake.stderr).toBe(0);
    const summary = JSON.parse(bake.stdout) as { cost: number; experts: { mean_gate: number }[] };
    expect(Number.isFinite(summary.cost)).toBe(true);
    // Top-1 gates are the chosen adapter's probability: of two, at least a half.
    const total = summary.experts.reduce((a, e) => a + e.mean_gate, 0);
    expect(total).toBeGreaterThanOrEqual(0.5);
    expect(total).toBeLessThanOrEqual(1 + 1e-6);

    // Another adapter in the expert's place (the router copied beside other folders of the
    // same names): the hash says so.
    const { config } = await loadModelFromPath(STORIES);
    const other = join(dir, 'other');
    const copy = (from: string, names: string[]) =>
      new Map(names.map((n) => [n, new Uint8Array(readFileSync(join(from, n)))]));
    const moved = join(other, 'token');
    await writeFiles(moved, copy(out, ['router.json', 'router.safetensors']));
    await writeFiles(
      join(other, 'snorp'),
      copy(snorp, ['adapter_config.json', 'adapter_model.safetensors']),
    );
    await writeFiles(
      join(other, 'zimmy'),
      randomAdapterFiles(config, { seed: 9, rank: 2, alpha: 4, range: 0.2, baseModel: 'x' }),
    );
    const changed = await cli(['logits', '--model', STORIES, '--router', moved, '--ids', '1,2']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/is not the adapter "zimmy" the router was trained with/);
    expect(changed.stderr.trim().split('\n')).toHaveLength(1);
  });

  it.each([
    // MoLA's counts by depth; SMoRA shares MixLoRA's path here (its engine is checked in
    // src/routing/gradients.test.ts).
    ['mixlora', ['--layer-experts', '1,2', '--rank', '2', '--top-k', '1']],
    ['flylora', ['--rank', '4', '--top-k', '2', '--nonzeros', '8']],
  ])('%s: trains its own experts; logits run the folder it wrote', async (mode, extra) => {
    const out = join(dir, mode);
    const { code, stdout, stderr } = await cli([
      'route',
      '--mode',
      mode,
      ...extra,
      ...common,
      '--steps',
      '2',
      '--lr',
      '0.02',
      '--out',
      out,
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { final_val_loss: number; base_val_loss: number };
    // B starts at zero: the first evaluation is the base model's.
    expect(report.final_val_loss).not.toBe(report.base_val_loss);
    const json = JSON.parse(readFileSync(join(out, 'router.json'), 'utf8')) as {
      modules: { ranks: number[] }[];
    };
    if (mode === 'mixlora')
      expect(new Set(json.modules.map((m) => m.ranks.length))).toEqual(new Set([1, 2]));
    const rows = await logits(['--router', out, '--ids', '1,400,30', '--positions', 'last']);
    expect(rows[0][0].every(Number.isFinite)).toBe(true);
  });

  it.each([
    [
      ['--mode', 'bogus', '--adapters', zimmy],
      /--mode must be one of scales, token, mixlora, smora, flylora/,
    ],
    [['--adapters', zimmy], /--mode is required/],
    [['--mode', 'token'], /routes between adapters: give them with --adapters/],
    [['--mode', 'mixlora', '--adapters', zimmy], /trains its own experts; it takes no --adapters/],
    [['--mode', 'token', '--adapters', join(dir, 'nowhere')], /nowhere/],
  ])('refuses %j with exit 2 and one line', async (args, message) => {
    const { code, stderr } = await cli(['route', ...args, ...common, '--out', join(dir, 'bad')]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a corrupt or foreign router folder exits 2 with one line', async () => {
    const bad = join(dir, 'corrupt');
    await writeFiles(
      bad,
      new Map([
        [
          'router.json',
          new TextEncoder().encode(
            '{"format": "lora-studio-router", "version": 1, "mode": "token", "top_k": -1}',
          ),
        ],
      ]),
    );
    const corrupt = await cli(['logits', '--model', STORIES, '--router', bad, '--ids', '1,2']);
    expect(corrupt.code).toBe(2);
    expect(corrupt.stderr).toMatch(/router\.json: has no valid top_k/);
    const missing = await cli(['logits', '--model', STORIES, '--router', dir, '--ids', '1,2']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/has no router\.json/);
  });
});
