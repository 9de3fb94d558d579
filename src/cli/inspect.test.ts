// `lora-studio inspect`: every real fixture adapter summarised with its known facts (‖ΔW‖ on
// two of them, checked against a direct computation), dtypes and non-finite values counted,
// DoRA described without ΔW figures; malformed input refused by a FormatError naming what is
// wrong, and by the CLI with exit code 2 and one line on stderr.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  inspectAdapter,
  readForInspection,
  summariseAdapter,
  type AdapterInspection,
} from '../analysis/inspect.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { BUILT_IN, builtIn, fixture, FIXTURES } from '../testing/fixtures.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const CONFIG = 'adapter_config.json';
const WEIGHTS = 'adapter_model.safetensors';

function cli(args: string[]) {
  return promisify(execFile)(process.execPath, [BIN, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

function fixtureFiles(dir: string): Map<string, Uint8Array> {
  return new Map([CONFIG, WEIGHTS].map((f) => [f, fixture(`adapters/${dir}/${f}`)]));
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** ‖s·B·A‖_F from the raw file, by the Gram matrices: ‖BA‖² = Σ (BᵀB)ₖₗ (AAᵀ)ₗₖ. */
function directNorm(dir: string, key: string, rank: number, scale: number): number {
  const st = readSafetensors(fixture(`adapters/${dir}/${WEIGHTS}`), WEIGHTS);
  const a = st.read(`base_model.model.${key}.lora_A.weight`);
  const b = st.read(`base_model.model.${key}.lora_B.weight`);
  const gram = (x: Float32Array, rows: number, cols: number, byColumns: boolean) =>
    Array.from({ length: rank * rank }, (_, kl) => {
      const [k, l] = [Math.floor(kl / rank), kl % rank];
      let sum = 0;
      for (let j = 0; j < (byColumns ? rows : cols); j++)
        sum += byColumns ? x[j * cols + k] * x[j * cols + l] : x[k * cols + j] * x[l * cols + j];
      return sum;
    });
  const btb = gram(b, b.length / rank, rank, true);
  const aat = gram(a, rank, a.length / rank, false);
  return Math.abs(scale) * Math.sqrt(btb.reduce((t, v, kl) => t + v * aat[kl], 0));
}

// Known facts from each adapter_config.json and its tensors' shapes (fixtures/MANIFEST.md).
const KNOWN = [
  {
    dir: 'qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32',
    base: 'Qwen/Qwen2.5-0.5B-Instruct',
    task: 'CAUSAL_LM',
    r: 6,
    alpha: 32,
    targets: ['q_proj', 'v_proj'],
    modules: 48,
    params: 24 * 6 * (896 + 896 + 896 + 128),
    first: 'model.layers.0.self_attn.q_proj',
  },
  {
    dir: 'qwen2.5-0.5b-instruct/MatthewZhang473_20251017_140153_r12_alpha32',
    base: 'Qwen/Qwen2.5-0.5B-Instruct',
    task: 'CAUSAL_LM',
    r: 12,
    alpha: 32,
    targets: ['q_proj', 'v_proj'],
    modules: 48,
    params: 24 * 12 * (896 + 896 + 896 + 128),
    first: 'model.layers.0.self_attn.q_proj',
  },
  ...['5epochs', '100epochs'].map((epochs) => ({
    dir: `smollm-135m-instruct/medai_TFM-HITESH_${epochs}`,
    base: 'HuggingFaceTB/SmolLM-135M-Instruct',
    task: null,
    r: 16,
    alpha: 32,
    targets: ['q_proj', 'v_proj'],
    modules: 60,
    params: 30 * 16 * (576 + 576 + 576 + 192),
    first: 'model.layers.0.self_attn.q_proj',
  })),
  {
    dir: 'tinyllama-1.1b-chat/ARONA_minhmc2007',
    base: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    task: 'CAUSAL_LM',
    r: 4,
    alpha: 16,
    targets: ['q_proj', 'v_proj'],
    modules: 44,
    params: 22 * 4 * (2048 + 2048 + 2048 + 256),
    first: 'model.layers.0.self_attn.q_proj',
  },
  {
    dir: 'gpt2/generated-causal-c_attn',
    base: 'openai-community/gpt2',
    task: 'CAUSAL_LM',
    r: 8,
    alpha: 16,
    targets: ['c_attn'],
    modules: 12,
    params: 12 * 8 * (768 + 2304),
    first: 'transformer.h.0.attn.c_attn',
  },
  {
    dir: 'gpt2/generated-seqcls-c_attn',
    base: 'gpt2',
    task: 'SEQ_CLS',
    r: 8,
    alpha: 8,
    targets: ['c_attn'],
    modules: 12,
    params: 12 * 8 * (768 + 2304) + 6 * 768,
    first: 'transformer.h.0.attn.c_attn',
  },
];
/**
 * The ΔW figures are checked on two of them: compareAdapters forms every ΔW on the GPU for its
 * sign pass even for one adapter, seconds per adapter on SwiftShader.
 */
const WITH_DELTAS = [KNOWN[0], KNOWN[6]];

describe('inspect: the real fixture adapters', () => {
  it.each(KNOWN)('$dir: config, tensors and scalings', (known) => {
    const summary = summariseAdapter(readForInspection(fixtureFiles(known.dir), known.dir));
    const scale = known.alpha / known.r;
    const seqcls = known.task === 'SEQ_CLS';
    expect(summary).toMatchObject({
      format: 'peft-lora',
      variant: 'lora',
      dora: false,
      baseModel: known.base,
      taskType: known.task,
      r: known.r,
      loraAlpha: known.alpha,
      rankPattern: {},
      alphaPattern: {},
      rslora: false,
      fanInFanOut: known.dir.startsWith('gpt2'),
      targets: known.targets,
      moduleKinds: known.targets.map((kind) => ({
        kind,
        modules: known.modules / known.targets.length,
        ranks: [known.r],
        alphas: [known.alpha],
        scalings: [scale],
      })),
      modulesToSave: null,
      // PEFT stores a SEQ_CLS head (score) whole, though modules_to_save does not name it.
      fullTensors: seqcls ? ['score.weight'] : [],
      tensorCount: 2 * known.modules + (seqcls ? 1 : 0),
      parameterCount: known.params,
      dtypes: { F32: 2 * known.modules + (seqcls ? 1 : 0) },
      nonFinite: 0,
      notes: seqcls ? ['whole tensors stored beside the factors: score.weight'] : [],
    });
    expect(summary.tensors.every((t) => t.nonFinite === 0 && t.dtype === 'F32')).toBe(true);
    expect(summary.modules).toHaveLength(known.modules);
    expect(summary.modules[0].path).toBe(known.first);
    for (const m of summary.modules)
      expect(m).toMatchObject({ rank: known.r, alpha: known.alpha, scale });
  });

  it('GPT-2: the two c_proj modules (attention, MLP) are two kinds, in forward order', () => {
    const files = new Map([CONFIG, WEIGHTS].map((f) => [f, fixture(`models/arch/gpt2/lora/${f}`)]));
    const summary = summariseAdapter(readForInspection(files, 'gpt2-lora'));
    const kinds = ['c_attn', 'attn.c_proj', 'c_fc', 'mlp.c_proj'];
    expect(summary.targets).toEqual(kinds);
    expect(summary.moduleKinds.map((k) => [k.kind, k.modules])).toEqual(kinds.map((k) => [k, 2]));
    expect(summary.modules.slice(0, 4).map((m) => m.path)).toEqual(
      ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].map((p) => `transformer.h.0.${p}`),
    );
  });

  it.each(WITH_DELTAS)('$dir: ‖ΔW‖ and effective ranks', async (known) => {
    const report = await inspectAdapter(readForInspection(fixtureFiles(known.dir), known.dir));
    const [first] = report.modules;
    const scale = known.alpha / known.r;
    expect(first.norm).toBeCloseTo(directNorm(known.dir, known.first, known.r, scale), 6);
    for (const m of report.modules) {
      expect(m.norm).toBeGreaterThan(0);
      expect(m.effectiveRank90).toBeGreaterThanOrEqual(1);
      expect(m.effectiveRank90).toBeLessThanOrEqual(m.effectiveRank99!);
      expect(m.effectiveRank99).toBeLessThanOrEqual(known.r);
    }
    const total = Math.sqrt(report.modules.reduce((t, m) => t + m.norm! ** 2, 0));
    expect(report.norm).toBeCloseTo(total, 9);
  });

  it('refuses the pickled adapter_model.bin without opening it', () => {
    const dir = 'tinyllama-1.1b/generated-pickle';
    const files = new Map([
      [CONFIG, fixture(`adapters/${dir}/${CONFIG}`)],
      ['adapter_model.bin', fixture(`adapters/${dir}/adapter_model.bin`)],
    ]);
    expect(() => readForInspection(files, dir)).toThrow(
      /^adapter_model.bin: is a PyTorch pickle, which LoRA Studio never opens/,
    );
  });
});

describe('inspect: dtypes, non-finite values, DoRA', () => {
  /** A safetensors file from raw little-endian tensor bytes (for dtypes we never write). */
  function rawSafetensors(
    tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[],
  ) {
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const t of tensors) {
      header[t.name] = {
        dtype: t.dtype,
        shape: t.shape,
        data_offsets: [offset, offset + t.data.length],
      };
      offset += t.data.length;
    }
    const head = json(header);
    const out = new Uint8Array(8 + head.length + offset);
    new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
    out.set(head, 8);
    let at = 8 + head.length;
    for (const t of tensors) {
      out.set(t.data, at);
      at += t.data.length;
    }
    return out;
  }
  const halves = (bits: number[]) => new Uint8Array(Uint16Array.from(bits).buffer);
  const floats = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
  const config = { peft_type: 'LORA', r: 1, lora_alpha: 2, target_modules: ['q_proj', 'v_proj'] };
  const q = 'base_model.model.model.layers.0.self_attn.q_proj';
  const v = 'base_model.model.model.layers.0.self_attn.v_proj';

  it('reads F16 and BF16 as stored, counts NaN and Inf per tensor, and gives ΔW figures only for finite modules', async () => {
    const weights = rawSafetensors([
      // F16 1.0 = 0x3c00, +Inf = 0x7c00; BF16 1.0 = 0x3f80, NaN = 0x7fc0.
      {
        name: `${q}.lora_A.weight`,
        dtype: 'F16',
        shape: [1, 3],
        data: halves([0x3c00, 0x7c00, 0x3c00]),
      },
      { name: `${q}.lora_B.weight`, dtype: 'BF16', shape: [2, 1], data: halves([0x3f80, 0x7fc0]) },
      {
        name: `${v}.lora_A.weight`,
        dtype: 'BF16',
        shape: [1, 3],
        data: halves([0x3f80, 0x3f80, 0x3f80]),
      },
      { name: `${v}.lora_B.weight`, dtype: 'F32', shape: [2, 1], data: floats([3, 4]) },
      { name: 'base_model.model.position_ids', dtype: 'I64', shape: [2], data: new Uint8Array(16) },
    ]);
    const files = new Map([
      [CONFIG, json(config)],
      [WEIGHTS, weights],
    ]);
    const report = await inspectAdapter(readForInspection(files, 'synthetic'));
    expect(report.dtypes).toEqual({ F16: 1, BF16: 2, F32: 1, I64: 1 });
    expect(report.tensors.map((t) => t.nonFinite)).toEqual([1, 1, 0, 0, null]);
    expect(report.nonFinite).toBe(2);
    expect(report.fullTensors).toEqual(['position_ids']);
    // v: ΔW = 2·[3, 4]ᵀ·[1, 1, 1], ‖ΔW‖ = 2·5·√3, rank 1.
    expect(report.modules).toMatchObject([
      { path: 'model.layers.0.self_attn.q_proj', norm: null, effectiveRank90: null },
      { path: 'model.layers.0.self_attn.v_proj', effectiveRank90: 1, effectiveRank99: 1 },
    ]);
    expect(report.modules[1].norm).toBeCloseTo(10 * Math.sqrt(3), 5);
    expect(report.norm).toBeCloseTo(10 * Math.sqrt(3), 5);
    expect(report.notes.join('\n')).toMatch(
      /no ΔW figures for modules with NaN or Inf factors: model.layers.0.self_attn.q_proj/,
    );
  });

  it('describes DoRA (magnitudes listed, no ΔW figures) and rank_pattern / alpha_pattern / rsLoRA scalings', async () => {
    const tensors = [
      { name: `${q}.lora_A.weight`, shape: [2, 3], data: new Float32Array(6).fill(1) },
      { name: `${q}.lora_B.weight`, shape: [4, 2], data: new Float32Array(8).fill(1) },
      { name: `${q}.lora_magnitude_vector`, shape: [4], data: new Float32Array(4).fill(1) },
      { name: `${v}.lora_A.weight`, shape: [1, 3], data: new Float32Array(3).fill(1) },
      { name: `${v}.lora_B.weight`, shape: [4, 1], data: new Float32Array(4).fill(1) },
      { name: `${v}.lora_magnitude_vector`, shape: [4], data: new Float32Array(4).fill(1) },
    ];
    const dora = {
      ...config,
      r: 2,
      use_dora: true,
      use_rslora: true,
      rank_pattern: { v_proj: 1 },
      alpha_pattern: { v_proj: 8 },
    };
    const files = new Map([
      [CONFIG, json(dora)],
      [WEIGHTS, writeSafetensors(tensors)],
    ]);
    const report = await inspectAdapter(readForInspection(files, 'dora'));
    expect(report).toMatchObject({
      variant: 'dora',
      dora: true,
      rslora: true,
      norm: null,
      fullTensors: [],
      tensorCount: 6,
      moduleKinds: [
        { kind: 'q_proj', ranks: [2], alphas: [2], scalings: [2 / Math.SQRT2] },
        { kind: 'v_proj', ranks: [1], alphas: [8], scalings: [8] },
      ],
    });
    expect(report.modules.every((m) => m.norm === null)).toBe(true);
    expect(report.notes[0]).toMatch(/^DoRA: ΔW depends on the base weights/);
  });
});

describe('inspect: malformed input', () => {
  const dir = 'gpt2/generated-causal-c_attn';
  const good = fixtureFiles(dir);
  const weights = good.get(WEIGHTS)!;
  const withFile = (name: string, bytes: Uint8Array) => new Map([...good, [name, bytes]]);
  const hugeHeader = weights.slice();
  new DataView(hugeHeader.buffer).setBigUint64(0, 2n ** 40n, true);
  const garbledHeader = weights.slice();
  garbledHeader.set(new TextEncoder().encode('{{{{'), 8);
  const st = readSafetensors(weights, WEIGHTS);
  const onlyA = [...st.header.tensors.keys()]
    .filter((k) => !k.endsWith('h.3.attn.c_attn.lora_B.weight'))
    .map((name) => ({ name, shape: st.header.tensors.get(name)!.shape, data: st.read(name) }));

  it.each([
    [
      'a truncated safetensors',
      withFile(WEIGHTS, weights.subarray(0, weights.length - 100)),
      /ends at byte \d+ of a \d+-byte data area \(truncated file\?\)/,
    ],
    [
      'a file too short for a header',
      withFile(WEIGHTS, weights.subarray(0, 5)),
      /too short for safetensors/,
    ],
    [
      'a huge header length',
      withFile(WEIGHTS, hugeHeader),
      /header length 1099511627776 exceeds the 104857600-byte limit/,
    ],
    ['a garbled header', withFile(WEIGHTS, garbledHeader), /header is not valid UTF-8 JSON/],
    [
      'bad JSON in the config',
      withFile(CONFIG, new TextEncoder().encode('{"r": 8,')),
      /^adapter_config.json: is not valid JSON/,
    ],
    [
      'another PEFT type',
      withFile(CONFIG, json({ peft_type: 'IA3' })),
      /describes a "IA3" adapter; only LoRA is supported/,
    ],
    [
      'ranks that contradict the config',
      withFile(CONFIG, json({ peft_type: 'LORA', r: 4, lora_alpha: 8 })),
      /transformer.h.0.attn.c_attn.lora_A has rank 8; the config says 4/,
    ],
    [
      'a lone factor',
      withFile(WEIGHTS, writeSafetensors(onlyA)),
      /has only one of transformer.h.3.attn.c_attn's LoRA factors/,
    ],
    [
      'no weights',
      new Map([[CONFIG, good.get(CONFIG)!]]),
      /needs adapter_config.json and adapter_model.safetensors together/,
    ],
  ])('%s', (_, files, message) => {
    expect(() => readForInspection(files, dir)).toThrow(message);
  });
});

describe('lora-studio inspect', () => {
  let tmp = '';
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'lora-studio-inspect-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('prints the JSON summary of a zipped adapter (a folder inside the zip)', async () => {
    const dir = 'gpt2/generated-causal-c_attn';
    const zip = join(tmp, 'adapter.zip');
    const files = fixtureFiles(dir);
    await writeFile(zip, zipSync({ adapter: Object.fromEntries(files) }));
    const { code, stdout, stderr } = await cli(['inspect', zip]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as AdapterInspection;
    expect(report).toMatchObject({
      name: zip,
      baseModel: 'openai-community/gpt2',
      r: 8,
      loraAlpha: 16,
    });
    expect(report.modules).toHaveLength(12);
  });

  it('with --model, adds the intruder dimensions per module and layer (GPU and --cpu agree)', async () => {
    const stories = `${BUILT_IN}stories260K.bin`;
    const { config } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const dir = join(tmp, 'stories-adapter');
    await mkdir(dir);
    const options = { seed: 5, rank: 4, alpha: 8, range: 0.4, baseModel: 'stories260K' };
    const files = randomAdapterFiles(config, { ...options, modules: ['q_proj', 'down_proj'] });
    for (const [name, bytes] of files) await writeFile(join(dir, name), bytes);
    type Report = AdapterInspection & {
      intruders: {
        k: number;
        threshold: number;
        total: number;
        byLayer: { layer: number; count: number }[];
        modules: { path: string; count: number; similarities: number[] }[];
      };
    };
    const reports: Report[] = [];
    for (const extra of [[], ['--cpu']]) {
      const args = ['inspect', dir, '--model', stories, '--intruder-k', '4', ...extra];
      const { code, stdout, stderr } = await cli(args);
      expect(code, stderr).toBe(0);
      reports.push(JSON.parse(stdout) as Report);
    }
    const [gpuReport, cpuReport] = reports;
    const { intruders } = gpuReport;
    expect(intruders).toMatchObject({ k: 4, threshold: 0.5 });
    expect(intruders.modules).toHaveLength(2 * config.numLayers);
    expect(intruders.total).toBe(intruders.modules.reduce((n, m) => n + m.count, 0));
    expect(intruders.byLayer.map((l) => l.layer)).toEqual([...Array(config.numLayers).keys()]);
    for (const [i, m] of intruders.modules.entries()) {
      expect(m.similarities).toHaveLength(4);
      expect(m.count, m.path).toBe(cpuReport.intruders.modules[i].count);
    }
    // The summary is the plain inspection's, unchanged.
    expect(gpuReport.modules).toHaveLength(2 * config.numLayers);
    // Intruder options need the model.
    const { code, stderr } = await cli(['inspect', dir, '--intruder-k', '3']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/give --model/);
  });

  it('exits with 2 and one line on stderr for missing or malformed input', async () => {
    const weights = fixture(`adapters/gpt2/generated-causal-c_attn/${WEIGHTS}`);
    const truncated = join(tmp, 'truncated');
    await mkdir(truncated);
    await writeFile(
      join(truncated, CONFIG),
      fixture(`adapters/gpt2/generated-causal-c_attn/${CONFIG}`),
    );
    await writeFile(join(truncated, WEIGHTS), weights.subarray(0, 1000));
    await writeFile(join(tmp, 'adapter.txt'), 'not an adapter');
    const cases: [string, RegExp][] = [
      [
        truncated,
        /adapter_model.safetensors: header length \d+ runs past the end of the 1000-byte file/,
      ],
      [
        `${FIXTURES}adapters/tinyllama-1.1b/generated-pickle`,
        /adapter_model.bin: is a PyTorch pickle/,
      ],
      [join(tmp, 'nowhere'), /nowhere: does not exist/],
      [join(tmp, 'adapter.txt'), /adapter.txt: is neither an adapter folder nor a .zip/],
    ];
    for (const [path, message] of cases) {
      const { code, stdout, stderr } = await cli(['inspect', path]);
      expect(code, path).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/^lora-studio inspect: [^\n]*\n$/);
      expect(stderr).toMatch(message);
    }
    // A usage mistake is bad input too.
    expect((await cli(['inspect'])).code).toBe(2);
  });
});
