// ComPEFT against plain references: the kept entries are exactly the top share by magnitude, the
// file round-trips bit for bit, the restored adapter is ±α·σ at the kept entries (factors) or
// the best rank-r approximation of the ternary ΔW (delta, Eckart–Young), the least-squares α
// and the Gram-matrix ΔW error match dense computations, hostile files are refused by name, and
// the CLI compresses an adapter of the built-in model, judged by perplexity, and restores it.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterDirFiles } from '../cli/adapters.ts';
import { writeFiles } from '../cli/files.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import {
  compressAdapter,
  compressedFile,
  deltaError,
  dense,
  leastSquaresAlpha,
  readCompressedFile,
  restoredFiles,
  ternarize,
  ternaryAdapter,
} from './compeft.ts';
import { peftFiles, type ExportAdapter, type ExportModule } from './peft.ts';
import { readPeftAdapter } from './peft-read.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';

const BIN = fileURLToPath(new URL('../cli/bin.js', import.meta.url));
const BUILT_IN = fileURLToPath(new URL('../../public/', import.meta.url));

/** A DoRA-free adapter over modules of odd shapes, with a modules_to_save weight. */
function testAdapter(seed: number, shapes: { out: number; in: number; rank: number }[]) {
  const random = seededRandom(seed);
  const modules: ExportModule[] = shapes.map((s, layer) => ({
    path: `model.layers.${layer}.self_attn.q_proj`,
    layer,
    rank: s.rank,
    alpha: 2 * s.rank,
    in: s.in,
    out: s.out,
    a: randomArray(random, s.rank * s.in, -0.5, 0.5),
    b: randomArray(random, s.out * s.rank, -0.1, 0.1),
  }));
  const adapter: ExportAdapter = {
    modules,
    rank: shapes[0].rank,
    alpha: 2 * shapes[0].rank,
    rslora: false,
    targets: ['q_proj'],
    dropout: 0,
    initLoraWeights: true,
    baseModel: 'test/base',
    numLayers: shapes.length,
    wholeWeights: [{ name: 'lm_head.weight', shape: [3, 5], data: randomArray(random, 15, -1, 1) }],
  };
  const files = peftFiles(adapter);
  files.set('README.md', new TextEncoder().encode('# a card\n'));
  return files;
}

const SHAPES = [
  { out: 13, in: 37, rank: 3 },
  { out: 50, in: 21, rank: 4 },
];

describe('ComPEFT', () => {
  it('keeps exactly the top share by magnitude, ties in index order, with σ of all entries', () => {
    const random = seededRandom(1);
    for (const n of [1, 7, 64, 1001]) {
      const values = randomArray(random, n, -1, 1);
      // Ties: a few entries share the largest magnitude, with both signs.
      for (let i = 0; i < Math.min(4, n); i++) values[(i * 5) % n] = i % 2 ? -2 : 2;
      for (const density of [0.01, 0.1, 0.5, 1]) {
        const t = ternarize('x', [n], values, density);
        const k = Math.min(n, Math.max(1, Math.round(density * n)));
        const order = [...values.keys()].sort(
          (i, j) => Math.abs(values[j]) - Math.abs(values[i]) || i - j,
        );
        expect([...t.positions]).toEqual(order.slice(0, k).sort((i, j) => i - j));
        const mean = values.reduce((s, v) => s + v, 0) / n;
        const sigma = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
        expect(t.sigma).toBeCloseTo(sigma, 6);
        const restored = dense(t, 0.5);
        for (let i = 0; i < n; i++)
          expect(restored[i]).toBe(t.positions.includes(i) ? 0.5 * Math.sign(values[i]) : 0);
      }
    }
  });

  it('chooses the α of least squares, and measures ‖ΔW − ΔW̃‖ from Grams as densely', async () => {
    const files = testAdapter(2, SHAPES);
    const t = await ternaryAdapter(files, 'a', 'factors', 0.3, cpuCompute);
    const original = readPeftAdapter(files, 'a');
    const factorError = (alpha: number) => {
      let e = 0;
      for (const x of t.ternary) {
        const values = readSafetensors(files.get('adapter_model.safetensors')!, 'w').read(x.name);
        const approx = dense(x, alpha * x.sigma);
        values.forEach((v, i) => (e += (v - approx[i]) ** 2));
      }
      return e;
    };
    const best = leastSquaresAlpha(t);
    for (const step of [0.97, 1.03])
      expect(factorError(best * step)).toBeGreaterThan(factorError(best));
    // The Gram error against a dense ΔW computed here.
    const restored = readPeftAdapter(await restoredFiles(t, best, cpuCompute), 'a');
    let errors = 0;
    let total = 0;
    for (const [path, m] of original.modules) {
      const r = restored.modules.get(path)!;
      const out = m.b.length / m.rank;
      const inputs = m.a.length / m.rank;
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inputs; i++) {
          let x = 0;
          let y = 0;
          for (let k = 0; k < m.rank; k++) {
            x += m.b[o * m.rank + k] * m.a[k * inputs + i];
            y += r.b[o * m.rank + k] * r.a[k * inputs + i];
          }
          errors += (m.scale * x - r.scale * y) ** 2;
          total += (m.scale * x) ** 2;
        }
    }
    expect(deltaError(original, restored)).toBeCloseTo(Math.sqrt(errors / total), 5);
    expect(deltaError(original, original)).toBeLessThan(1e-3);
  });

  it('round-trips the file bit for bit and restores ±α·σ (factors), other tensors as they were', async () => {
    const files = testAdapter(3, SHAPES);
    const t = await ternaryAdapter(files, 'a', 'factors', 0.25, cpuCompute);
    const { adapter, alpha } = readCompressedFile(compressedFile(t, 1.7));
    expect(alpha).toBe(1.7);
    expect(adapter.config).toBe(new TextDecoder().decode(files.get('adapter_config.json')));
    expect(adapter.readme).toBe('# a card\n');
    const withoutSums = (xs: typeof t.ternary) => xs.map((x) => ({ ...x, keptAbsSum: undefined }));
    expect(withoutSums(adapter.ternary)).toEqual(withoutSums(t.ternary));
    const restored = readPeftAdapter(await restoredFiles(adapter, alpha, cpuCompute), 'a');
    const st = readSafetensors(
      (await restoredFiles(adapter, alpha, cpuCompute)).get('adapter_model.safetensors')!,
      'w',
    );
    for (const x of t.ternary) expect(st.read(x.name)).toEqual(dense(x, 1.7 * x.sigma));
    expect(restored.fullWeights.get('lm_head.weight')!.data).toEqual(
      readPeftAdapter(files, 'a').fullWeights.get('lm_head.weight')!.data,
    );
  });

  it('restores ΔW (delta) as the best rank-r approximation of its ternary form', async () => {
    const files = testAdapter(4, SHAPES);
    const t = await ternaryAdapter(files, 'a', 'delta', 0.2, cpuCompute);
    expect(t.ternary.map((x) => x.shape)).toEqual(SHAPES.map((s) => [s.out, s.in]));
    const restored = readPeftAdapter(await restoredFiles(t, 1, cpuCompute), 'a');
    for (const x of t.ternary) {
      const m = restored.modules.get(x.name)!;
      const [out, inputs] = x.shape;
      const target = dense(x, x.sigma);
      // ‖X − B̃Ã‖² = Σ_{i>r} σᵢ² for the best rank-r approximation.
      const rows = Array.from({ length: out }, (_, o) =>
        Array.from(target.subarray(o * inputs, (o + 1) * inputs)),
      );
      const transposed = out < inputs ? rows[0].map((_, i) => rows.map((r) => r[i])) : rows;
      const { s } = jacobiSvd({
        rows: transposed.length,
        cols: transposed[0].length,
        data: Float64Array.from(transposed.flat()),
      });
      const tail = [...s].slice(m.rank).reduce((sum, v) => sum + v * v, 0);
      let error = 0;
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inputs; i++) {
          let y = 0;
          for (let k = 0; k < m.rank; k++) y += m.b[o * m.rank + k] * m.a[k * inputs + i];
          error += (target[o * inputs + i] - y) ** 2;
        }
      expect(Math.sqrt(error)).toBeCloseTo(Math.sqrt(tail), 3);
    }
  });

  it('refuses hostile files by name, fast, without allocating what they claim', async () => {
    const files = testAdapter(5, SHAPES);
    const t = await ternaryAdapter(files, 'a', 'factors', 0.5, cpuCompute);
    const good = compressedFile(t, 1);
    const st = readSafetensors(good, 'f');
    const rewrite = (
      edit: (meta: { tensors: Record<string, unknown>[] } & Record<string, unknown>) => void,
    ) => {
      const meta = JSON.parse(st.header.metadata.compression) as {
        tensors: Record<string, unknown>[];
      } & Record<string, unknown>;
      edit(meta);
      const tensors = [...st.header.tensors.values()].map((e) => ({
        name: e.name,
        shape: e.shape,
        data: e.dtype === 'U8' ? st.bytes(e.name) : st.read(e.name),
      }));
      return writeSafetensors(tensors, {
        ...st.header.metadata,
        compression: JSON.stringify(meta),
      });
    };
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated', good.subarray(0, good.length - 3), /adapter_model\.compeft/],
      [
        'a PEFT file',
        files.get('adapter_model.safetensors')!,
        /not a LoRA Studio compressed adapter/,
      ],
      [
        'a huge shape',
        rewrite((m) => (m.tensors[0].shape = [1e6, 1e6])),
        /shape or count is not valid/,
      ],
      ['more kept than entries', rewrite((m) => (m.tensors[0].count = 1e9)), /shape or count/],
      [
        'fewer kept',
        rewrite((m) => ((m.tensors[0].count as number) -= 8)),
        /sign bytes|bytes follow/,
      ],
      ['a NaN scale', rewrite((m) => (m.tensors[0].sigma = 'NaN')), /scale is not a finite number/],
      ['a tensor twice', rewrite((m) => m.tensors.push(m.tensors[0])), /twice/],
      ['no α', rewrite((m) => delete m.alpha), /without target, alpha or density/],
      ['an unknown target', rewrite((m) => (m.target = 'bits')), /without target/],
    ];
    for (const [what, bytes, message] of cases) {
      const start = performance.now();
      expect(() => readCompressedFile(bytes), what).toThrow(message);
      expect(performance.now() - start, what).toBeLessThan(1000);
    }
    // A position past the end, and bytes left after the positions.
    const outside = { ...t, ternary: [{ ...t.ternary[0], positions: Uint32Array.of(10_000) }] };
    outside.ternary[0].negative = new Uint8Array(1);
    expect(() => readCompressedFile(compressedFile(outside, 1))).toThrow(/outside its/);
  });

  describe('lora-studio compress', () => {
    let dir: string;
    const cli = (args: string[]) =>
      promisify(execFile)(process.execPath, [BIN, 'compress', ...args], { timeout: 240_000 }).then(
        (r) => ({ code: 0, ...r }),
        (e: unknown) => e as { code: number; stdout: string; stderr: string },
      );
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'compeft-'));
      const { config } = await loadModelFromPath(`${BUILT_IN}models/stories260K.bin`);
      await writeFiles(
        join(dir, 'lora'),
        randomAdapterFiles(config, {
          seed: 6,
          rank: 4,
          alpha: 8,
          range: 0.3,
          baseModel: 'stories260K.bin',
        }),
      );
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('compresses, judged by perplexity on eval text, and decompresses to the adapter it restores', async () => {
      const out = join(dir, 'small');
      // A few stories of eval text: eleven perplexities on the CPU.
      const data = join(dir, 'eval.txt');
      const stories = await readFile(`${BUILT_IN}datasets/snorp-stories.txt`, 'utf8');
      await writeFile(data, stories.slice(0, 400));
      const r = await cli([
        join(dir, 'lora'),
        ...['--density', '0.2', '--out', out, '--cpu'],
        ...['--model', `${BUILT_IN}models/stories260K.bin`, '--data', data],
      ]);
      expect(r.stderr).not.toMatch(/Error/);
      const summary = JSON.parse(r.stdout) as Record<string, number | string>;
      expect(summary).toMatchObject({ target: 'factors', density: 0.2, alpha_rule: 'eval' });
      expect(summary.ratio).toBeGreaterThan(2);
      expect(Number.isFinite(summary.perplexity_change)).toBe(true);
      const report = JSON.parse(await readFile(join(out, 'compression.json'), 'utf8')) as {
        alpha: number;
        delta_error: number;
      };
      const back = join(dir, 'back');
      const d = await cli([out, '--decompress', '--out', back, '--cpu']);
      expect(d.code).toBe(0);
      const file = new Uint8Array(await readFile(join(out, 'adapter_model.compeft')));
      const { adapter, alpha } = readCompressedFile(file);
      expect(alpha).toBe(report.alpha);
      const expected = await restoredFiles(adapter, alpha, cpuCompute);
      expect(new Uint8Array(await readFile(join(back, 'adapter_model.safetensors')))).toEqual(
        expected.get('adapter_model.safetensors'),
      );
      // The restored adapter has every module, as far from the original as the report says.
      const original = readPeftAdapter(await adapterDirFiles(join(dir, 'lora')), 'lora');
      const restored = readPeftAdapter(expected, 'back');
      expect([...restored.modules.keys()].sort()).toEqual([...original.modules.keys()].sort());
      expect(deltaError(original, restored)).toBeCloseTo(report.delta_error, 6);
    }, 240_000);

    it('refuses a bad density, a missing adapter and a corrupt compressed file with exit code 2', async () => {
      const zero = await cli([join(dir, 'lora'), '--density', '0', '--out', join(dir, 'x')]);
      expect(zero.code).toBe(2);
      expect(zero.stderr).toMatch(/--density must be in \(0, 1\]/);
      const missing = await cli([join(dir, 'none'), '--density', '0.1', '--out', join(dir, 'x')]);
      expect(missing.code).toBe(2);
      const corrupt = join(dir, 'corrupt.compeft');
      await writeFile(corrupt, new Uint8Array([1, 2, 3]));
      const bad = await cli([corrupt, '--decompress', '--out', join(dir, 'y'), '--cpu']);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    });
  });

  it('compressAdapter picks the α a judge scores best', async () => {
    const files = testAdapter(7, SHAPES);
    const key = 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight';
    const original = readSafetensors(files.get('adapter_model.safetensors')!, 'w').read(key);
    const { sigma } = ternarize(key, [original.length], original, 0.3);
    // A judge that wants B's kept entries at 3σ: α = 3, one of the grid's.
    const c = await compressAdapter(
      files,
      'a',
      { target: 'factors', density: 0.3 },
      cpuCompute,
      (r) => {
        const b = readSafetensors(r.get('adapter_model.safetensors')!, 'w').read(key);
        return Promise.resolve(Math.abs(Math.max(...b.map(Math.abs)) / sigma - 3));
      },
    );
    expect(c).toMatchObject({ alphaRule: 'eval', alpha: 3 });
    expect(readCompressedFile(c.file).alpha).toBe(3);
    const plain = await compressAdapter(
      files,
      'a',
      { target: 'factors', density: 0.3 },
      cpuCompute,
    );
    expect(plain.alphaRule).toBe('least-squares');
  });
});
