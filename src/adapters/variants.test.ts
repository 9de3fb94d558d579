// The variant table is the one list of adapter variants: every entry must reach every place that
// offers, parses, reads, writes, merges and documents variants, and its engine's GPU terms must
// compute what its f64 reference does, so that a variant forgotten anywhere fails here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { usage } from '../cli/main.ts';
import { VARIANT_FLAGS, variantOption } from '../cli/train.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import { mergeAdapters } from '../merge/merge.ts';
import { createGpuModel } from '../model/forward.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import type { Transformer } from '../model/transformer.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { randomWeights, tinyConfig, tinyData } from '../testing/tiny-model.ts';
import { cpuBatchLoss, type CpuTerm } from '../model/cpu/reference.ts';
import { batchLoss, tokenBatch } from '../train/step.ts';
import {
  CHECKPOINT_JSON,
  CHECKPOINT_TENSORS,
  checkpointFiles,
  checkpointFromFiles,
} from '../train/checkpoint-files.ts';
import { upgradeSavedRun } from '../train/run-store.ts';
import { DEFAULT_SETTINGS } from '../train/settings.ts';
import { TrainableAdapter } from '../train/trainable.ts';
import type { Checkpoint } from '../train/trainer.ts';
import { VARIANT_CHOICES } from '../ui/train-settings-store.ts';
import { adaptedModules, TARGET_PRESETS, type LoraSpec } from './config.ts';
import { upgradeEntry } from './library.ts';
import { exportAdapter, peftFiles, type TrainedFactors } from './peft.ts';
import {
  adapterTerms,
  readPeftAdapter,
  type AdapterDetails,
  type PeftAdapter,
} from './peft-read.ts';
import { variantEngine } from './variants/engine.ts';
import {
  mergeRefusal,
  peftFlags,
  PLAIN_VARIANT,
  VARIANT_NAMES,
  variantEntry,
  VARIANTS,
  withVariantName,
  type VariantEntry,
  type VariantName,
  type VariantVectors,
} from './variants.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const gpu = useGpu();
const config = tinyConfig();
const weights = randomWeights(config, 3);
const batch = tokenBatch(tinyData(config.vocabSize).train.slice(0, 2));

const spec = (variant: VariantName): LoraSpec => ({
  rank: 2,
  alpha: 3,
  rslora: false,
  targets: TARGET_PRESETS['all-linear'],
  dropout: 0,
  init: 'lora',
  variant,
});

/** Random factors and vectors (positive, as magnitudes are) for every module of the spec. */
function randomFactors(name: VariantName, seed: number): Map<string, TrainedFactors> {
  const random = seededRandom(seed);
  return new Map(
    adaptedModules(config, spec(name)).map((m) => {
      const f: TrainedFactors = {
        a: randomArray(random, m.rank * m.in, -0.5, 0.5),
        b: randomArray(random, m.out * m.rank, -0.5, 0.5),
      };
      for (const v of variantEntry(name).vectors) f[v.field] = randomArray(random, m.out, 0.5, 2);
      return [m.path, f];
    }),
  );
}

/** An adapter of the variant as PEFT files hold it. */
function peftAdapterFiles(name: VariantName, factors: Map<string, TrainedFactors>) {
  const s = spec(name);
  return peftFiles(exportAdapter(adaptedModules(config, s), factors, s, 'tiny', config));
}

/** The f64 reference loss of the batch with these factors and vectors on every module. */
function referenceLoss(name: VariantName, factors: ReadonlyMap<string, TrainedFactors>): number {
  const terms = new Map<string, CpuTerm>();
  for (const m of adaptedModules(config, spec(name))) {
    const f = factors.get(m.path)!;
    const term = {
      a: Float64Array.from(f.a),
      b: Float64Array.from(f.b),
      rank: m.rank,
      scale: m.scale,
    };
    const vectors: VariantVectors<Float64Array> = {};
    for (const v of variantEntry(name).vectors) vectors[v.field] = Float64Array.from(f[v.field]!);
    const weight = weights.get(`${m.path}.weight`)!.data;
    terms.set(m.path, { ...term, variant: variantEngine(name).cpuTerm(weight, term, vectors) });
  }
  return cpuBatchLoss({ config, weights, terms, ...batch });
}

const gpuLoss = (view: Transformer) => batchLoss(gpu(), view, batch);

describe.each(VARIANTS.map((e) => [e.name, e as VariantEntry] as const))(
  'variant %s',
  (name, entry) => {
    it('is offered by the Train panel, with its label and explanation', () => {
      expect(VARIANT_CHOICES).toContainEqual({
        value: name,
        label: entry.label,
        explanation: entry.explanation,
      });
    });

    it("is listed by the CLI's --variant help and chosen by --variant", () => {
      const listed = /\[--variant ([^\]\s]+)\]/.exec(usage())?.[1].split('|');
      expect(listed).toContain(name);
      expect(variantOption(new Map([['variant', name]]), new Set())).toBe(name);
    });

    it('is named in docs/design.md', () => {
      const doc = read('docs/design.md');
      const section = doc.slice(doc.indexOf('**Adapter variants**'), doc.indexOf('## 4.'));
      expect(section.includes(`\`${name}\``), `\`${name}\` in the variants paragraph`).toBe(true);
    });

    it('goes through PEFT files and back: its flag, its vectors and its name', () => {
      const factors = randomFactors(name, 1);
      const files = peftAdapterFiles(name, factors);
      const written = JSON.parse(
        new TextDecoder().decode(files.get('adapter_config.json')),
      ) as Record<string, unknown>;
      expect(written).toMatchObject(peftFlags(name));
      const adapter = readPeftAdapter(files, name);
      expect(adapter.details.variant).toBe(name);
      for (const [path, f] of factors) {
        const m = adapter.modules.get(path);
        for (const v of entry.vectors) expect(m?.[v.field], `${path}.${v.key}`).toEqual(f[v.field]);
      }
    });

    it("gives merge's answer: merged, or refused with its reason", async () => {
      const adapter = readPeftAdapter(peftAdapterFiles(name, randomFactors(name, 2)), 'x');
      const merging = mergeAdapters(cpuCompute, [adapter], {
        method: 'cat',
        adapters: [{ id: 'x', weight: 1 }],
      });
      const refusal = mergeRefusal('x', name);
      expect(refusal === null).toBe(entry.mergeable === true);
      if (refusal) await expect(merging).rejects.toThrow(refusal);
      else await expect(merging).resolves.toBeDefined();
    });

    it('applied to a model on the GPU, gives the loss of its f64 reference', async () => {
      const factors = randomFactors(name, 3);
      const adapter: PeftAdapter = readPeftAdapter(peftAdapterFiles(name, factors), name);
      const model = createGpuModel(gpu(), config, weights);
      const applied = await adapterTerms(gpu(), model.transformer, [{ adapter, weight: 1 }]);
      try {
        model.setAdapters(applied.terms);
        const expected = referenceLoss(name, factors);
        expect(Math.abs((await gpuLoss(model.transformer)) - expected) / expected).toBeLessThan(
          1e-5,
        );
      } finally {
        releaseTensor(gpu(), ...applied.tensors);
        model.dispose();
      }
    });

    it('in training on the GPU, gives the loss of its f64 reference', async () => {
      const model = createGpuModel(gpu(), config, weights);
      const adapter = await TrainableAdapter.create(gpu(), model.transformer, spec(name), 5);
      try {
        // Random values where training starts from zeros and norms: the terms must carry them.
        const factors = randomFactors(name, 4);
        adapter.write(factors);
        await adapter.refresh();
        expect(await adapter.read()).toEqual(factors);
        const expected = referenceLoss(name, factors);
        const actual = await gpuLoss(adapter.view(model.transformer));
        expect(Math.abs(actual - expected) / expected).toBeLessThan(1e-5);
      } finally {
        adapter.dispose();
        model.dispose();
      }
    });
  },
);

describe('the variant table', () => {
  it('names each variant once, with unique short names and PEFT flags', () => {
    for (const key of ['name', 'shortName'] as const)
      expect(new Set(VARIANTS.map((e) => e[key])).size).toBe(VARIANTS.length);
    const flags = VARIANTS.flatMap((e) => (e.peftFlag === null ? [] : [e.peftFlag]));
    expect(new Set(flags).size).toBe(flags.length);
    // One variant is what adapter_config.json says without any flag.
    expect(VARIANTS.filter((e) => e.peftFlag === null).map((e) => e.name)).toEqual([PLAIN_VARIANT]);
  });

  it("is the README's list of --variant values", () => {
    expect(read('README.md')).toContain(`\`--variant ${VARIANT_NAMES.join('|')}\``);
  });

  it('imports no code at run time: the UI bundles it for its choices', () => {
    const source = read('src/adapters/variants.ts');
    expect(source.match(/^import (?!type )[^;]*;/gm)).toBeNull();
  });

  it('keeps --dora as --variant dora, and refuses two variants at once', () => {
    expect(VARIANT_FLAGS).toEqual(VARIANT_NAMES.filter((n) => n !== PLAIN_VARIANT));
    for (const flag of VARIANT_FLAGS) {
      expect(usage()).toContain(`[--${flag}]`);
      expect(variantOption(new Map(), new Set([flag]))).toBe(flag);
    }
    expect(variantOption(new Map(), new Set())).toBe(PLAIN_VARIANT);
    expect(variantOption(new Map([['variant', 'dora']]), new Set(['dora']))).toBe('dora');
    expect(() => variantOption(new Map([['variant', 'lora']]), new Set(['dora']))).toThrow(
      /lora and dora given/,
    );
    expect(() => variantOption(new Map([['variant', 'vera']]), new Set())).toThrow(
      /must be one of lora, dora/,
    );
  });

  it('resumes CLI checkpoints and browser runs saved with `dora: true`, and lists such adapters as DoRA', () => {
    const magnitude = Float32Array.of(1, 2);
    const checkpoint: Checkpoint = {
      version: 1,
      baseModel: 'tiny',
      config: { lora: spec('dora'), train: DEFAULT_SETTINGS },
      step: 1,
      history: [],
      factors: { p: { a: new Float32Array(2), b: new Float32Array(2), magnitude } },
      moments: [],
      tokens: 0,
      elapsedMs: 0,
    };
    const legacy = { ...spec('lora'), variant: undefined, dora: true } as LoraSpec;
    const files = checkpointFiles(checkpoint);
    const json = JSON.parse(new TextDecoder().decode(files.get(CHECKPOINT_JSON))) as Checkpoint;
    json.config.lora = legacy;
    // Written before the tensors' metadata carried the JSON: read from checkpoint.json.
    const st = readSafetensors(files.get(CHECKPOINT_TENSORS)!, CHECKPOINT_TENSORS);
    const oldTensors = writeSafetensors(
      [...st.header.tensors.values()].map((t) => ({
        name: t.name,
        shape: t.shape,
        data: st.read(t.name),
      })),
      { format: 'lora-studio-checkpoint' },
    );
    const resumed = checkpointFromFiles(oldTensors, () =>
      new TextEncoder().encode(JSON.stringify(json)),
    );
    expect(resumed.config.lora).toEqual(spec('dora'));
    expect(resumed.factors.p.magnitude).toEqual(magnitude);

    const dataset = {
      content: '',
      fileName: 'x.txt',
      options: { seqLen: 8, validationFraction: 0, seed: 0 },
    };
    const saved = {
      checkpoint: { ...checkpoint, config: { ...checkpoint.config, lora: legacy } },
      dataset,
      savedAt: 0,
    };
    expect(upgradeSavedRun(saved).checkpoint.config.lora).toEqual(spec('dora'));

    const details = { rank: 2, alpha: 3, rslora: false, modules: 1, targets: [], dora: true };
    const entry = {
      id: 'x',
      name: 'x',
      baseModel: 'tiny',
      createdAt: 0,
      origin: 'imported',
      files: {},
    };
    expect(
      upgradeEntry({ ...entry, details: details as unknown as AdapterDetails }).details?.variant,
    ).toBe('dora');
  });

  it('reads records saved before variants had names (`dora: true`)', () => {
    expect(withVariantName({ ...spec('lora'), variant: undefined, dora: true })).toEqual(
      spec('dora'),
    );
    expect(withVariantName({ rank: 4, dora: false })).toEqual({ rank: 4, variant: 'lora' });
    expect(withVariantName({ rank: 4, variant: 'dora' as const })).toEqual({
      rank: 4,
      variant: 'dora',
    });
  });
});
