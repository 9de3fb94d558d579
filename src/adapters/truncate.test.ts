// Cutting an adapter to a smaller rank: the first b rows of A and columns of B of every module,
// r and rank_pattern lowered, alpha and every other key and tensor kept — on a random adapter
// and on a real one written by PEFT; the CLI writes the folder and refuses bad input with exit 2.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFiles } from '../cli/files.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { fixture } from '../testing/fixtures.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';
import { tinyConfig } from '../testing/tiny-model.ts';
import { CONFIG, WEIGHTS } from './peft-config.ts';
import { readPeftAdapter } from './peft-read.ts';
import { truncateAdapter } from './truncate.ts';

const BIN = fileURLToPath(new URL('../cli/bin.js', import.meta.url));
const json = (bytes: Uint8Array | undefined) =>
  JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;

describe('truncateAdapter', () => {
  const config = tinyConfig();
  const options = { seed: 4, rank: 5, alpha: 10, range: 0.5, baseModel: 'tiny/base' };

  it('keeps the first b components of every module, with r and rank_pattern lowered', () => {
    const raw = randomAdapterFiles(config, options);
    // One module at rank 2 through rank_pattern: cut to 3 it stays whole.
    const adapterConfig = { ...json(raw.get(CONFIG)), rank_pattern: { 'layers.1.mlp.up_proj': 2 } };
    const st = readSafetensors(raw.get(WEIGHTS) ?? new Uint8Array(), WEIGHTS);
    const small = 'base_model.model.model.layers.1.mlp.up_proj';
    const tensors = [...st.header.tensors].map(([name, entry]) => {
      const data = st.read(name);
      if (name === `${small}.lora_A.weight`)
        return { name, shape: [2, entry.shape[1]], data: data.slice(0, 2 * entry.shape[1]) };
      if (name === `${small}.lora_B.weight`)
        return {
          name,
          shape: [entry.shape[0], 2],
          data: Float32Array.from(
            { length: entry.shape[0] * 2 },
            (_, i) => data[Math.floor(i / 2) * 5 + (i % 2)],
          ),
        };
      return { name, shape: entry.shape, data };
    });
    const files = new Map([
      [CONFIG, new TextEncoder().encode(JSON.stringify(adapterConfig))],
      [WEIGHTS, writeSafetensors(tensors, { format: 'pt' })],
    ]);
    const before = readPeftAdapter(files, 'full');
    const cutFiles = truncateAdapter(files, 3, 'full');
    const after = readPeftAdapter(cutFiles, 'cut');
    expect(json(cutFiles.get(CONFIG))).toMatchObject({
      r: 3,
      lora_alpha: 10,
      rank_pattern: { 'layers.1.mlp.up_proj': 2 },
      base_model_name_or_path: 'tiny/base',
    });
    expect(
      readSafetensors(cutFiles.get(WEIGHTS) ?? new Uint8Array(), WEIGHTS).header.metadata,
    ).toEqual({ format: 'pt' });
    expect([...after.modules.keys()]).toEqual([...before.modules.keys()]);
    for (const [path, m] of before.modules) {
      const cut = after.modules.get(path);
      if (!cut) throw new Error(path);
      const b = Math.min(m.rank, 3);
      const inputs = m.a.length / m.rank;
      const out = m.b.length / m.rank;
      expect(cut.rank, path).toBe(b);
      // PEFT's scaling of the cut module: its alpha over its new rank.
      expect(cut.scale, path).toBeCloseTo(10 / b, 6);
      expect(cut.a).toEqual(m.a.slice(0, b * inputs));
      for (let o = 0; o < out; o++)
        expect(cut.b.slice(o * b, (o + 1) * b)).toEqual(m.b.slice(o * m.rank, o * m.rank + b));
    }
  });

  it('cuts a real PEFT adapter (SmolLM-135M, rank 16) to rank 4', () => {
    const dir = 'adapters/smollm-135m-instruct/medai_TFM-HITESH_5epochs/';
    const files = new Map([CONFIG, WEIGHTS].map((name) => [name, fixture(dir + name)]));
    const cut = readPeftAdapter(truncateAdapter(files, 4, 'medai'), 'medai');
    const full = readPeftAdapter(files, 'medai');
    expect(cut.details).toMatchObject({ ...full.details, rank: 4 });
    for (const [path, m] of cut.modules) {
      const whole = full.modules.get(path);
      expect(m.a, path).toEqual(whole?.a.slice(0, m.a.length));
      expect(m.a.length * 16, path).toBe((whole?.a.length ?? 0) * 4);
    }
  });

  it('refuses DoRA magnitudes and a rank that is not a whole number ≥ 1', () => {
    const files = randomAdapterFiles(config, options);
    expect(() => truncateAdapter(files, 0, 'x')).toThrow(/whole number ≥ 1/);
    const st = readSafetensors(files.get(WEIGHTS) ?? new Uint8Array(), WEIGHTS);
    const tensors = [...st.header.tensors].map(([name, e]) => ({
      name,
      shape: e.shape,
      data: st.read(name),
    }));
    const path = 'base_model.model.model.layers.0.self_attn.q_proj';
    tensors.push({
      name: `${path}.lora_magnitude_vector`,
      shape: [12],
      data: new Float32Array(12).fill(1),
    });
    const dora = new Map([
      [
        CONFIG,
        new TextEncoder().encode(JSON.stringify({ ...json(files.get(CONFIG)), use_dora: true })),
      ],
      [WEIGHTS, writeSafetensors(tensors)],
    ]);
    expect(() => truncateAdapter(dora, 2, 'dora')).toThrow(
      /DoRA magnitudes.*only plain LoRA adapters can be cut/,
    );
  });
});

describe('lora-studio truncate', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, [BIN, 'truncate', ...args]).then(
      (r) => ({ code: 0, ...r }),
      (e: unknown) => e as { code: number; stdout: string; stderr: string },
    );

  it('writes the cut adapter and refuses bad input with exit code 2', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-studio-truncate-'));
    const source = join(dir, 'full');
    await writeFiles(
      source,
      randomAdapterFiles(tinyConfig(), {
        seed: 1,
        rank: 4,
        alpha: 8,
        range: 0.5,
        baseModel: 'tiny/base',
      }),
    );
    const out = join(dir, 'cut');
    const done = await cli([source, '--rank', '2', '--out', out]);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toEqual({ out, r: 2 });
    expect(json(await readFile(join(out, CONFIG)))).toMatchObject({ r: 2, lora_alpha: 8 });
    for (const args of [
      [source, '--rank', '0', '--out', out],
      [source, '--out', out],
      [join(dir, 'missing'), '--rank', '2', '--out', out],
    ]) {
      const failed = await cli(args);
      expect(failed.code, args.join(' ')).toBe(2);
      expect(failed.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
