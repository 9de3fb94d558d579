// Reading a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) into factors per
// module, and applying adapters to a loaded model at run time (W x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x).
// Handles every adapter variant (DoRA's magnitude vectors: src/adapters/variants.ts) and
// modules_to_save (whole tensors) as PEFT and this studio write them. GPT-2's Conv1D layout
// (fan_in_fan_out) stores its base weights transposed but the factors as usual (A [r × in],
// B [out × r]): they apply to the engine's [out, in] weights like any other. Embedding LoRA
// (lora_embedding_A [r × vocab], lora_embedding_B [dim × r]) reads into the same orientation as a
// linear module (in = vocab, out = dim: B·A = ΔEᵀ) and applies at the token embedding
// (transformer.ts's embed).
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { axpy } from '../linalg/elementwise.ts';
import { asF32 } from '../linalg/widen.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { modulePath } from '../model/architecture.ts';
import { moduleKind } from '../model/families.ts';
import { readSafetensors } from '../model/safetensors.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import { transpose } from '../model/weights.ts';
import type { HostFactors } from './config.ts';
import { adapterFiles, CONFIG, moduleScaling, tensorRole, WEIGHTS } from './peft-config.ts';
import { variantEngine } from './variants/engine.ts';
import { variantEntry, vectorOwner, type VariantName, type VariantVectors } from './variants.ts';

/** A module's factors, and the vectors its adapter's variant adds (DoRA's magnitude m [out]). */
export interface AdapterModule extends HostFactors, VariantVectors {
  rank: number;
  scale: number;
  /** PEFT's embedding LoRA: B·A is the transposed update of the embedding table. */
  embedding?: true;
}

/** What the library shows about an adapter. */
export interface AdapterDetails {
  rank: number;
  alpha: number;
  rslora: boolean;
  /** Adapted modules (layers × module types). */
  modules: number;
  /** Module types adapted, e.g. ["q_proj", "v_proj"]. */
  targets: string[];
  /** How its modules combine A and B with the weight (DoRA: magnitude vectors rescale rows). */
  variant: VariantName;
  /** Its base stores weights [in, out] (GPT-2's Conv1D), as PEFT's fan_in_fan_out says. */
  fanInFanOut?: boolean;
}

export interface PeftAdapter {
  name: string;
  baseModel: string | null;
  /** Factors by module path (`model.layers.0.self_attn.q_proj`). */
  modules: Map<string, AdapterModule>;
  /** modules_to_save: whole weights by HF name (`lm_head.weight`) that replace the base's. */
  fullWeights: Map<string, { shape: number[]; data: Float32Array }>;
  details: AdapterDetails;
  /** Tensors holding NaN or Inf, with how many such values. */
  nonFinite: { tensor: string; count: number }[];
}

export function readPeftAdapter(files: ReadonlyMap<string, Uint8Array>, name: string): PeftAdapter {
  const { config, weights } = adapterFiles(files, name, { strict: true });
  const st = readSafetensors(weights, WEIGHTS);
  const factors = new Map<
    string,
    Partial<HostFactors> & {
      rank?: number;
      vectors: Map<string, Float32Array>;
      embedding?: true;
    }
  >();
  const entry = (path: string) =>
    factors.get(path) ?? factors.set(path, { vectors: new Map() }).get(path)!;
  const nonFinite: { tensor: string; count: number }[] = [];
  const fullWeights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, info] of st.header.tensors) {
    const role = tensorRole(key);
    if (role.kind === 'whole') {
      // modules_to_save: whole tensors that replace the base's (`…lm_head.weight`).
      const module = role.name.endsWith('.weight') ? role.name.slice(0, -'.weight'.length) : null;
      if (
        module === null ||
        !config.modulesToSave.some((n) => module === n || module.endsWith(`.${n}`))
      )
        throw new FormatError(
          WEIGHTS,
          `holds ${key}, which is not a LoRA factor this version can apply`,
        );
      fullWeights.set(role.name, { shape: info.shape, data: st.read(key) });
      continue;
    }
    const values = st.read(key);
    if (role.kind === 'vector') {
      entry(role.path).vectors.set(role.vector.key, values);
      continue;
    }
    const bad = values.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
    if (bad > 0) nonFinite.push({ tensor: key, count: bad });
    const f = entry(role.path);
    if (role.embedding) f.embedding = true;
    if (role.which === 'A') {
      f.a = values;
      f.rank = info.shape[0];
    } else f.b = values;
  }
  const variant = variantEntry(config.variant);
  const modules = new Map<string, AdapterModule>();
  for (const [path, f] of factors) {
    if (!f.a || !f.b)
      throw new FormatError(WEIGHTS, `has only one of ${path}'s LoRA factors (A and B)`);
    const { rank, scale } = moduleScaling(config, path, f.rank ?? 0);
    const vectors: VariantVectors = {};
    for (const v of variant.vectors) {
      const values = f.vectors.get(v.key);
      if (values?.length !== f.b.length / rank)
        throw new FormatError(
          WEIGHTS,
          `is a ${variant.shortName} adapter without a fitting ${v.key} for ${path}`,
        );
      vectors[v.field] = values;
    }
    for (const key of f.vectors.keys()) {
      const owner = vectorOwner(key);
      if (owner && owner.entry !== variant)
        throw new FormatError(
          WEIGHTS,
          `holds ${owner.vector.description} but ${CONFIG} does not say ${owner.entry.peftFlag}`,
        );
    }
    if (f.embedding && !variant.embeddings)
      throw new FormatError(
        WEIGHTS,
        `holds a ${variant.shortName} embedding (${path}), which is not supported`,
      );
    modules.set(path, {
      a: f.a,
      b: f.b,
      rank,
      scale,
      ...vectors,
      ...(f.embedding ? { embedding: true as const } : {}),
    });
  }
  const targets = [...new Set([...modules.keys()].map(moduleKind))];
  return {
    name,
    baseModel: config.baseModel,
    modules,
    fullWeights,
    details: {
      rank: config.r,
      alpha: config.alpha,
      rslora: config.rslora,
      modules: modules.size,
      targets,
      variant: config.variant,
      fanInFanOut: config.fanInFanOut,
    },
    nonFinite,
  };
}

/** Lists every module whose shape does not fit the model (empty: it fits). */
export function shapeMismatches(adapter: PeftAdapter, config: ModelConfig): string[] {
  const known = new Map<string, { in: number; out: number }>();
  const { arch } = config;
  for (let l = 0; l < config.numLayers; l++)
    for (const m of arch.modules) known.set(modulePath(arch, l, m), m);
  known.set(arch.embedding, { in: config.vocabSize, out: config.hiddenSize });
  const problems: string[] = [];
  for (const [path, m] of adapter.modules) {
    const shape = known.get(path);
    if (!shape) {
      problems.push(`${path}: the model has no such module`);
      continue;
    }
    const inputs = m.a.length / m.rank;
    const outputs = m.b.length / m.rank;
    if (inputs !== shape.in)
      problems.push(`${path}: adapter expects in=${inputs}, model has ${shape.in}`);
    if (outputs !== shape.out)
      problems.push(`${path}: adapter expects out=${outputs}, model has ${shape.out}`);
  }
  for (const [name, t] of adapter.fullWeights) {
    const expected = fullWeightShape(config, name);
    if (!expected) problems.push(`${name}: the model has no such weight (modules_to_save)`);
    else if (expected.join('×') !== t.shape.join('×'))
      problems.push(`${name}: adapter has ${t.shape.join('×')}, model has ${expected.join('×')}`);
  }
  return problems;
}

/** "does not fit this model:" and the first mismatches, one per line. */
export function misfit(problems: readonly string[], shown = 8): string {
  const lines = problems.slice(0, shown);
  if (problems.length > shown) lines.push(`…and ${problems.length - shown} more`);
  return `does not fit this model:\n  ${lines.join('\n  ')}`;
}

/** Shapes of the whole weights modules_to_save may replace. */
function fullWeightShape(config: ModelConfig, name: string): number[] | null {
  const { arch } = config;
  if (name === `${arch.embedding}.weight` || name === `${arch.head}.weight`)
    return [config.vocabSize, config.hiddenSize];
  return null;
}

/**
 * Run-time terms for adapters with weights, uploaded to the GPU, each as its variant applies it
 * (src/adapters/variants/: LoRA adds wᵢ·sᵢ·Bᵢ·Aᵢ·x; DoRA adds wᵢ·(gᵢ∘(W + sᵢ·Bᵢ·Aᵢ) − W)·x with
 * gᵢ computed from the model's weights); whole weights (modules_to_save) become overrides
 * W + Σ wᵢ·(Tᵢ − W). The caller releases `tensors` when done. Refuses an adapter that does not fit
 * the model.
 */
export async function adapterTerms(
  gpu: Gpu,
  model: Pick<Transformer, 'config' | 'weight'>,
  adapters: readonly { adapter: PeftAdapter; weight: number }[],
): Promise<{
  terms: Map<string, AdapterTerm[]>;
  overrides: Map<string, Tensor>;
  tensors: Tensor[];
}> {
  for (const { adapter } of adapters) {
    const problems = shapeMismatches(adapter, model.config);
    if (problems.length > 0) throw new FormatError(adapter.name, misfit(problems));
  }
  const terms = new Map<string, AdapterTerm[]>();
  const overrides = new Map<string, Tensor>();
  const tensors: Tensor[] = [];
  try {
    for (const { adapter, weight } of adapters) {
      const engine = variantEngine(adapter.details.variant);
      for (const [path, m] of adapter.modules) {
        const width = m.a.length / m.rank;
        // The embedding gathers rows of Aᵀ (vocab × r): one row per token.
        const a = m.embedding
          ? uploadTensor(gpu, transpose(m.a, m.rank, width), [width, m.rank], 'f32', `${path} Aᵀ`)
          : uploadTensor(gpu, m.a, [m.rank, width], 'f32', `${path} A`);
        const b = uploadTensor(gpu, m.b, [m.b.length / m.rank, m.rank], 'f32', `${path} B`);
        tensors.push(a, b);
        const baseWeight = model.weight(`${path}.weight`);
        const applied = await engine.applied(gpu, { module: m, a, b, weight, baseWeight });
        tensors.push(...applied.tensors);
        terms.set(path, [...(terms.get(path) ?? []), applied.term]);
      }
    }
    // Whole weights: W + Σ wᵢ·(Tᵢ − W), so weight 1 replaces W and 0 keeps it.
    const names = new Set(adapters.flatMap(({ adapter }) => [...adapter.fullWeights.keys()]));
    for (const name of names) {
      const base = model.weight(name);
      const override = await run(gpu, (batch) => asF32(batch, base));
      tensors.push(override);
      // The subtrahend in f32: the base itself, or a widened copy of a half-precision one.
      const original = base.dtype === 'f32' ? base : await run(gpu, (b) => asF32(b, base));
      try {
        for (const { adapter, weight } of adapters) {
          const full = adapter.fullWeights.get(name);
          if (!full) continue;
          const t = uploadTensor(gpu, full.data, full.shape, 'f32', `${name} (modules_to_save)`);
          await run(gpu, (batch) => {
            axpy(batch, weight, t, override);
            axpy(batch, -weight, original, override);
          });
          releaseTensor(gpu, t);
        }
      } finally {
        if (original !== base) releaseTensor(gpu, original);
      }
      overrides.set(name, override);
    }
  } catch (e) {
    releaseTensor(gpu, ...tensors);
    throw e;
  }
  return { terms, overrides, tensors };
}
