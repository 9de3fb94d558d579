// The merge command end to end on the real Qwen2.5 fixture pair: PEFT files, the recipe and
// model card, a mergekit YAML, and --recipe replaying a merge bit for bit.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../model/safetensors.ts';
import { FIXTURES } from '../testing/fixtures.ts';

const BIN = new URL('./bin.js', import.meta.url).pathname;
const QWEN = `${FIXTURES}adapters/qwen2.5-0.5b-instruct/`;
const SOURCES = [
  `${QWEN}MatthewZhang473_20251017_101834_r6_alpha32`,
  `${QWEN}MatthewZhang473_20251017_140153_r12_alpha32`,
];

function cli(args: string[]) {
  return promisify(execFile)(process.execPath, [BIN, 'merge', ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

describe('lora-studio merge', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-studio-merge-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const read = async (folder: string, file: string) => readFile(join(dir, folder, file), 'utf8');

  it('merges by svd to rank 8: PEFT files, the recipe and a model card', async () => {
    const { code, stdout, stderr } = await cli([
      '--method',
      'svd',
      '--rank',
      '8',
      '--weights',
      '0.5,0.5',
      '--out',
      join(dir, 'svd'),
      ...SOURCES,
    ]);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as { lost_energy: number; modules: number };
    expect(summary.modules).toBe(48);
    expect(summary.lost_energy).toBeGreaterThan(0);
    expect(JSON.parse(await read('svd', 'adapter_config.json'))).toMatchObject({
      r: 8,
      lora_alpha: 8,
      use_rslora: false,
      layers_to_transform: null,
      base_model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct',
    });
    expect(JSON.parse(await read('svd', 'merge_recipe.json'))).toMatchObject({
      created_with: 'LoRA Studio',
      spec: { method: 'svd', rank: 8, adapters: [{ weight: 0.5 }, { weight: 0.5 }] },
      result: { rank: 8, modules: 48 },
    });
    const card = await read('svd', 'README.md');
    expect(card).toMatch(/^---\nbase_model: Qwen\/Qwen2.5-0.5B-Instruct/);
    expect(card).toContain('**svd**');
  });

  it('reads a mergekit YAML (gradient weights, per-model density) and --recipe replays it exactly', async () => {
    const yaml = join(dir, 'ties.yaml');
    await writeFile(
      yaml,
      [
        'merge_method: dare_ties',
        'models:',
        `  - model: ${SOURCES[0]}`,
        '    parameters: { weight: [0.2, 1.0], density: 0.6 }',
        `  - model: ${SOURCES[1]}`,
        '    parameters: { weight: 0.5 }',
        'parameters: { density: 0.4 }',
        '',
      ].join('\n'),
    );
    const first = await cli([
      '--config',
      yaml,
      '--rank',
      '6',
      '--seed',
      '7',
      '--out',
      join(dir, 'yaml'),
    ]);
    expect(first.code, first.stderr).toBe(0);
    const recipe = JSON.parse(await read('yaml', 'merge_recipe.json')) as { spec: object };
    expect(recipe.spec).toMatchObject({
      method: 'dare_ties_svd',
      density: 0.4,
      tiesDivisor: 'weights',
      seed: 7,
      rank: 6,
      adapters: [{ weight: [0.2, 1], density: 0.6 }, { weight: 0.5 }],
    });
    const replay = await cli([
      '--recipe',
      join(dir, 'yaml', 'merge_recipe.json'),
      '--out',
      join(dir, 'replay'),
    ]);
    expect(replay.code, replay.stderr).toBe(0);
    const bytes = (folder: string) => readFile(join(dir, folder, 'adapter_model.safetensors'));
    expect((await bytes('replay')).equals(await bytes('yaml'))).toBe(true);
  }, 120_000);

  it('scales layers by a --layer-weights preset file', async () => {
    const grid = join(dir, 'ramp.json');
    await writeFile(grid, '{ "preset": "ramp_up" }');
    const out = join(dir, 'ramp');
    const { code, stderr } = await cli([
      '--method',
      'cat',
      '--layer-weights',
      grid,
      '--out',
      out,
      ...SOURCES,
    ]);
    expect(code, stderr).toBe(0);
    const recipe = JSON.parse(await read('ramp', 'merge_recipe.json')) as {
      spec: { layerGrid: { weights: number[][] } };
    };
    const rows = recipe.spec.layerGrid.weights;
    expect(rows).toHaveLength(24);
    expect(rows[0].every((w) => w === 0) && rows[23].every((w) => w === 1)).toBe(true);
    const st = readSafetensors(await readFile(join(out, 'adapter_model.safetensors')), 'merged');
    // Layer 0's weight 0 leaves nothing there to write.
    expect([...st.header.tensors.keys()].some((n) => n.includes('.layers.0.'))).toBe(false);
    const last = st.read('base_model.model.model.layers.23.self_attn.q_proj.lora_B.weight');
    expect(last.some((v) => v !== 0)).toBe(true);
  });

  it('explains bad input', async () => {
    expect((await cli(['--method', 'mean', '--out', dir, ...SOURCES])).stderr).toMatch(
      /--method must be one of cat, svd/,
    );
    expect(
      (await cli(['--method', 'cat', '--weights', '1', '--out', dir, ...SOURCES])).stderr,
    ).toMatch(/--weights needs 2 numbers/);
    const yaml = join(dir, 'bad.yaml');
    await writeFile(yaml, 'merge_method: model_stock\nmodels: [{model: x}]\n');
    expect((await cli(['--config', yaml, '--out', dir])).stderr).toMatch(
      /"model_stock" is not supported/,
    );
  });
});
