// LoRA extraction against models whose difference is known: a tuned model made from a base by
// adding rank-2 updates to every linear module (and moving a norm) must come back as an adapter
// that, applied to the base, gives the tuned model's logits; an energy rule picks the rank the
// spectrum implies; the CLI writes a PEFT adapter the studio reads back, and refuses bad input.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFiles } from '../cli/files.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import { gpuCompute } from '../merge/compute.ts';
import { modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { ReferenceModel } from '../model/cpu/reference.ts';
import { hfFolderFiles } from '../model/hf-export.ts';
import type { ModelWeights, WeightSource } from '../model/weights.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { familyConfig, randomWeights } from '../testing/tiny-model.ts';
import { composeWeights } from './compose.ts';
import { extractLora, type ExtractOptions } from './extract.ts';
import { peftFiles } from './peft.ts';
import { readPeftAdapter } from './peft-read.ts';

const device = useGpu();
const BIN = fileURLToPath(new URL('../cli/bin.js', import.meta.url));

function source(config: ModelConfig, weights: ModelWeights): WeightSource {
  return {
    config,
    names: [...weights.keys()],
    read: (name) => Promise.resolve(weights.get(name)!),
  };
}

/** The base plus a rank-2 ΔW on every linear module, and a changed final norm. */
function tunedFrom(config: ModelConfig, base: ModelWeights, seed: number): ModelWeights {
  const random = seededRandom(seed);
  const tuned: ModelWeights = new Map(
    [...base].map(([n, t]) => [n, { ...t, data: t.data.slice() }]),
  );
  for (let l = 0; l < config.numLayers; l++)
    for (const m of config.arch.modules) {
      const w = tuned.get(`${modulePath(config.arch, l, m)}.weight`)!;
      const b = randomArray(random, m.out * 2, -0.2, 0.2);
      const a = randomArray(random, 2 * m.in, -0.2, 0.2);
      for (let o = 0; o < m.out; o++)
        for (let i = 0; i < m.in; i++)
          w.data[o * m.in + i] += b[o * 2] * a[i] + b[o * 2 + 1] * a[m.in + i];
    }
  const norm = tuned.get(`${config.arch.norms.final}.weight`)!;
  norm.data[0] += 0.25;
  return tuned;
}

const OPTIONS: ExtractOptions = {
  rule: 2,
  svEpsilon: 0,
  targets: ['all-linear'],
  embeddings: 'skip',
  head: 'skip',
  seed: 1,
  baseModel: 'base',
};

const TOKENS = [1, 5, 2, 7, 3];

describe('LoRA extraction', () => {
  it.each(['llama', 'gpt2'])(
    '%s: a rank-2 difference comes back exactly, and applied to the base gives the tuned logits',
    async (family) => {
      const config = familyConfig(family);
      const base = randomWeights(config, 2);
      const tuned = tunedFrom(config, base, 3);
      // The final norm is not carried: compare with it put back.
      const normName = `${config.arch.norms.final}.weight`;
      const target = new Map(tuned).set(normName, base.get(normName)!);
      for (const compute of [cpuCompute, gpuCompute(device())]) {
        const e = await extractLora(source(config, base), source(config, tuned), compute, OPTIONS);
        expect(e.modules).toHaveLength(config.numLayers * config.arch.modules.length);
        expect(e.modules.every((m) => m.rank === 2 && m.energy > 1 - 1e-5)).toBe(true);
        expect(e.notCarried.map((n) => n.name)).toEqual([normName]);
        const adapter = readPeftAdapter(peftFiles(e.adapter), 'extracted');
        const composed = composeWeights(config, base, [{ adapter, weight: 1 }]);
        const got = new ReferenceModel(composed.config, composed.weights);
        const want = new ReferenceModel(config, target);
        TOKENS.forEach((token, pos) => {
          const a = got.step(token, pos);
          const b = want.step(token, pos);
          const scale = Math.max(...b.map(Math.abs));
          const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
          expect(worst / scale).toBeLessThan(2e-5);
        });
      }
    },
  );

  it('an energy rule keeps the smallest rank reaching the share; ε drops small triplets', async () => {
    const config = familyConfig('llama');
    const base = randomWeights(config, 4);
    const tuned = tunedFrom(config, base, 5);
    const e = await extractLora(source(config, base), source(config, tuned), cpuCompute, {
      ...OPTIONS,
      rule: { energy: 0.5, max: 8 },
    });
    // A rank-2 ΔW: one triplet when it holds half the energy, else two; never more.
    for (const m of e.modules) expect([1, 2]).toContain(m.rank);
    expect(e.modules.some((m) => m.rank === 1)).toBe(true);
    // Every triplet dropped: nothing is left to carry…
    const everything = { ...OPTIONS, svEpsilon: 1e9 };
    await expect(
      extractLora(source(config, base), source(config, tuned), cpuCompute, everything),
    ).rejects.toThrow(/differs from the base in no module the adapter can carry/);
    // …but a changed embedding, saved whole.
    tuned.get(`${config.arch.embedding}.weight`)!.data[0] += 1;
    const saved = await extractLora(source(config, base), source(config, tuned), cpuCompute, {
      ...everything,
      embeddings: 'save',
    });
    expect(saved.adapter.modules).toHaveLength(0);
    expect(saved.modules.every((m) => m.rank === 0 && m.energy === 0)).toBe(true);
    expect(saved.adapter.wholeWeights?.map((w) => w.name)).toEqual([
      `${config.arch.embedding}.weight`,
    ]);
  });

  describe('lora-studio extract', () => {
    let dir: string;
    const cli = (args: string[]) =>
      promisify(execFile)(process.execPath, [BIN, 'extract', ...args]).then(
        (r) => ({ code: 0, ...r }),
        (e: unknown) => e as { code: number; stdout: string; stderr: string },
      );
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'extract-'));
      const config = familyConfig('qwen3');
      const base = randomWeights(config, 6);
      const tuned = tunedFrom(config, base, 7);
      tuned.get(`${config.arch.embedding}.weight`)!.data[3] += 1;
      await writeFiles(join(dir, 'base'), hfFolderFiles(config, base));
      await writeFiles(join(dir, 'tuned'), hfFolderFiles(config, tuned));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('writes a PEFT adapter with modules_to_save and a report, read back by the studio', async () => {
      const out = join(dir, 'lora');
      const r = await cli([
        ...['--base', join(dir, 'base'), '--tuned', join(dir, 'tuned')],
        ...['--energy', '0.999', '--embeddings', 'save', '--out', out, '--cpu'],
      ]);
      expect(r.stderr).not.toMatch(/Error/);
      expect(JSON.parse(r.stdout)).toMatchObject({
        rank: 2,
        modules_to_save: ['model.embed_tokens.weight'],
      });
      const files = new Map(
        await Promise.all(
          ['adapter_config.json', 'adapter_model.safetensors'].map(
            async (f) => [f, new Uint8Array(await readFile(join(out, f)))] as const,
          ),
        ),
      );
      const adapter = readPeftAdapter(files, 'lora');
      expect(adapter.baseModel).toBe('base');
      expect([...adapter.fullWeights.keys()]).toEqual(['model.embed_tokens.weight']);
      const config = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json'))) as {
        modules_to_save: string[];
      };
      expect(config.modules_to_save).toEqual(['embed_tokens']);
      const report = JSON.parse(await readFile(join(out, 'extraction.json'), 'utf8')) as {
        energy: number;
        not_carried: { name: string }[];
      };
      expect(report.energy).toBeGreaterThan(0.999);
      expect(report.not_carried.map((n) => n.name)).toEqual(['model.norm.weight']);
    });

    it('refuses contradicting or missing options and another architecture with exit code 2', async () => {
      const both = await cli([
        ...['--base', join(dir, 'base'), '--tuned', join(dir, 'tuned')],
        ...['--rank', '2', '--energy', '0.9', '--out', join(dir, 'x')],
      ]);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/one of --rank R and --energy E/);
      const other = join(dir, 'other');
      const config = familyConfig('llama');
      await writeFiles(other, hfFolderFiles(config, randomWeights(config, 1)));
      const mismatch = await cli([
        ...['--base', join(dir, 'base'), '--tuned', other, '--rank', '2', '--out', join(dir, 'y')],
      ]);
      expect(mismatch.code).toBe(2);
      expect(mismatch.stderr).toMatch(/not the base's architecture/);
    });
  });
});
