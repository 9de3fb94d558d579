// Trained adapters written as HF PEFT writes them (docs/design.md §2): adapter_config.json
// with every field PEFT's LoraConfig saves, and adapter_model.safetensors with
// `base_model.model.<module>.lora_A.weight` (r × in) and `…lora_B.weight` (out × r), F32, metadata
// {"format":"pt"}. Base-mutating inits (PiSSA, MiLoRA, OLoRA) are converted to a plain LoRA for
// the unmodified base (§4): ΔW = s(BA − B₀A₀) = s·[B | −B₀]·[A ; A₀] at rank 2r, lora_alpha
// doubled (×√2 with rsLoRA) so that the scaling of the doubled rank is unchanged
// (src/adapters/recompress.ts brings that back to rank r by SVD, when asked). A variant adds its
// flag and vectors (src/adapters/variants.ts): DoRA `…lora_magnitude_vector` (out) and
// use_dora: true. That key is what PEFT writes: since the vector moved into a DoRA layer's
// `weight`, get_peft_model_state_dict strips that `.weight` to keep the older format. The
// conversion keeps the magnitudes: W + s(BA − B₀A₀) is the very matrix W_res + s·B·A whose row
// norms they divide by.
import type { ModelConfig } from '../model/config.ts';
import { writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import type { AdaptedModule, HostFactors, LoraSpec } from './config.ts';
import { initEntry, type InitEntry } from './inits.ts';
import { peftFlags, variantEntry, type VariantName, type VariantVectors } from './variants.ts';

const PREFIX = 'base_model.model.';

/** [B | −B₀] (out × 2r) and [A ; A₀] (2r × in). */
function plainLora(m: AdaptedModule, f: HostFactors, f0: HostFactors): HostFactors {
  const r = m.rank;
  const b = new Float32Array(m.out * 2 * r);
  for (let o = 0; o < m.out; o++)
    for (let j = 0; j < r; j++) {
      b[o * 2 * r + j] = f.b[o * r + j];
      b[o * 2 * r + r + j] = -f0.b[o * r + j];
    }
  const a = new Float32Array(2 * r * m.in);
  a.set(f.a, 0);
  a.set(f0.a, r * m.in);
  return { a, b };
}

/**
 * A module's trained weights on the host: A, B, its variant's vectors (DoRA's m [out]) and, for
 * an init that trains one, the core C [r × r] between them (exported folded into B as B·g·C).
 */
export interface TrainedFactors extends HostFactors, VariantVectors {
  core?: Float32Array;
  /** The trained gain g [1] multiplying the core, where the init trains one (LoLDU). */
  gain?: Float32Array;
}

/** How checkpoints name a module's trained core and gain. */
export const CORE_KEY = 'lora_core';
export const GAIN_KEY = 'lora_core_gain';

/** One module as it is written: factors, its variant's vectors, rank and alpha. */
export interface ExportModule extends VariantVectors {
  path: string;
  layer: number;
  rank: number;
  alpha: number;
  in: number;
  out: number;
  a: Float32Array;
  b: Float32Array;
  /** PEFT's embedding LoRA (B·A = ΔEᵀ), written as lora_embedding_A/B. */
  embedding?: true;
}

/** A whole weight that replaces the base's (PEFT's modules_to_save), by its HF name. */
export interface WholeWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Everything an adapter_config.json says, with the modules to write. */
export interface ExportAdapter {
  modules: ExportModule[];
  rank: number;
  alpha: number;
  rslora: boolean;
  targets: readonly string[];
  /** The base stores its weights [in, out] (GPT-2's Conv1D): PEFT must know to transpose B·A. */
  fanInFanOut?: boolean;
  dropout: number;
  initLoraWeights: InitEntry['initLoraWeights'];
  baseModel: string;
  numLayers: number;
  /** Every module carries this variant's vectors; plain LoRA when absent. */
  variant?: VariantName;
  /** Whole weights written as modules_to_save (`lm_head.weight`…). */
  wholeWeights?: readonly WholeWeight[];
}

/**
 * The trained factors to write. With A₀ and B₀ of a base-mutating init (`initial`), converted to
 * a plain LoRA for the original base (rank 2r); without, as trained (for the residual base).
 */
export function exportAdapter(
  modules: readonly AdaptedModule[],
  factors: ReadonlyMap<string, TrainedFactors>,
  spec: LoraSpec,
  baseModel: string,
  config: ModelConfig,
  initial?: ReadonlyMap<string, HostFactors>,
): ExportAdapter {
  const convert = initial !== undefined;
  // Doubling the rank keeps s = alpha/r (or alpha/√r) when alpha doubles (or grows by √2).
  const alphaFactor = convert ? (spec.rslora ? Math.SQRT2 : 2) : 1;
  const rankFactor = convert ? 2 : 1;
  const variant = variantEntry(spec.variant);
  return {
    modules: modules.map((m) => {
      const f = factors.get(m.path);
      if (!f) throw new Error(`no factors for ${m.path}`);
      const vectors: VariantVectors = {};
      for (const v of variant.vectors) {
        vectors[v.field] = f[v.field];
        if (!vectors[v.field]) throw new Error(`no ${v.description} for ${m.path}`);
      }
      const f0 = initial?.get(m.path);
      const { a, b } = convert && f0 ? plainLora(m, f, f0) : f;
      const rank = m.rank * rankFactor;
      const alpha = m.alpha * alphaFactor;
      return { ...m, a, b, rank, alpha, ...vectors };
    }),
    rank: spec.rank * rankFactor,
    alpha: spec.alpha * alphaFactor,
    rslora: spec.rslora,
    // PEFT matches each name against module paths' ends: the resolved names, not our keywords.
    targets: [...new Set(modules.map((m) => m.module))],
    fanInFanOut: config.arch.modules.some((m) => m.conv1d),
    dropout: spec.dropout,
    initLoraWeights: initEntry(spec.init).initLoraWeights,
    baseModel,
    numLayers: config.numLayers,
    variant: spec.variant,
  };
}

/** The two files of a PEFT LoRA adapter, by name. */
export function peftFiles(e: ExportAdapter): Map<string, Uint8Array> {
  const variant = variantEntry(e.variant);
  const tensors: TensorToWrite[] = [];
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  for (const m of e.modules) {
    tensors.push(
      // PEFT names an embedding's factors lora_embedding_A/B, without `.weight`.
      m.embedding
        ? { name: `${PREFIX}${m.path}.lora_embedding_A`, shape: [m.rank, m.in], data: m.a }
        : { name: `${PREFIX}${m.path}.lora_A.weight`, shape: [m.rank, m.in], data: m.a },
      m.embedding
        ? { name: `${PREFIX}${m.path}.lora_embedding_B`, shape: [m.out, m.rank], data: m.b }
        : { name: `${PREFIX}${m.path}.lora_B.weight`, shape: [m.out, m.rank], data: m.b },
    );
    for (const v of variant.vectors) {
      const data = m[v.field];
      if (data?.length !== m.out) throw new Error(`no fitting ${v.description} for ${m.path}`);
      tensors.push({ name: `${PREFIX}${m.path}.${v.key}`, shape: [m.out], data });
    }
    if (m.rank !== e.rank) rankPattern[m.path] = m.rank;
    if (m.alpha !== e.alpha) alphaPattern[m.path] = m.alpha;
  }
  // PEFT saves a modules_to_save weight under the module's own name and lists the module's last
  // segment, which it matches against the ends of module paths.
  const saved = (e.wholeWeights ?? []).map((w) => {
    tensors.push({ name: `${PREFIX}${w.name}`, shape: w.shape, data: w.data });
    return w.name
      .replace(/\.weight$/, '')
      .split('.')
      .pop()!;
  });
  const layers = [...new Set(e.modules.filter((m) => !m.embedding).map((m) => m.layer))].sort(
    (a, b) => a - b,
  );
  const config = {
    alpha_pattern: alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: e.baseModel,
    bias: 'none',
    fan_in_fan_out: e.fanInFanOut === true,
    inference_mode: true,
    init_lora_weights: e.initLoraWeights,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: layers.length === e.numLayers || layers.length === 0 ? null : layers,
    loftq_config: {},
    lora_alpha: e.alpha,
    lora_dropout: e.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: saved.length > 0 ? saved : null,
    peft_type: 'LORA',
    r: e.rank,
    rank_pattern: rankPattern,
    revision: null,
    target_modules: [...e.targets],
    task_type: 'CAUSAL_LM',
    ...peftFlags(e.variant),
    use_rslora: e.rslora,
  };
  return new Map([
    ['adapter_config.json', new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n')],
    ['adapter_model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
  ]);
}
