// Trained adapters written as HF PEFT writes them (../shared/DESIGN.md §2): adapter_config.json
// with every field PEFT's LoraConfig saves, and adapter_model.safetensors with
// `base_model.model.<module>.lora_A.weight` (r × in) and `…lora_B.weight` (out × r), F32, metadata
// {"format":"pt"}. Base-mutating inits (PiSSA, MiLoRA, OLoRA) are converted to a plain LoRA for
// the unmodified base (§4): ΔW = s(BA − B₀A₀) = s·[B | −B₀]·[A ; A₀] at rank 2r, lora_alpha
// doubled (×√2 with rsLoRA) so that the scaling of the doubled rank is unchanged.
import type { ModelConfig } from '../model/config.ts';
import { writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import type { AdaptedModule, HostFactors, LoraSpec } from './config.ts';
import { mutatesBase } from './config.ts';

export interface PeftExport {
  modules: readonly AdaptedModule[];
  factors: ReadonlyMap<string, HostFactors>;
  spec: LoraSpec;
  baseModel: string;
  config: ModelConfig;
  /** A₀, B₀ of a base-mutating init. */
  initial?: ReadonlyMap<string, HostFactors>;
}

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

/** The two files of a PEFT LoRA adapter, by name. */
export function peftFiles(e: PeftExport): Map<string, Uint8Array> {
  const convert = mutatesBase(e.spec.init);
  if (convert && !e.initial) throw new Error('a base-mutating init needs A₀ and B₀ to export');
  // Doubling the rank keeps s = alpha/r (or alpha/√r) when alpha doubles (or grows by √2).
  const alphaFactor = convert ? (e.spec.rslora ? Math.SQRT2 : 2) : 1;
  const rankFactor = convert ? 2 : 1;
  const tensors: TensorToWrite[] = [];
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  for (const m of e.modules) {
    const f = e.factors.get(m.path);
    if (!f) throw new Error(`no factors for ${m.path}`);
    const f0 = e.initial?.get(m.path);
    const out = convert && f0 ? plainLora(m, f, f0) : f;
    const r = m.rank * rankFactor;
    tensors.push(
      { name: `${PREFIX}${m.path}.lora_A.weight`, shape: [r, m.in], data: out.a },
      { name: `${PREFIX}${m.path}.lora_B.weight`, shape: [m.out, r], data: out.b },
    );
    if (m.rank !== e.spec.rank) rankPattern[m.path] = r;
    if (m.alpha !== e.spec.alpha) alphaPattern[m.path] = m.alpha * alphaFactor;
  }
  const allLayers =
    e.modules.length > 0 && new Set(e.modules.map((m) => m.layer)).size === e.config.numLayers;
  const config = {
    alpha_pattern: alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: e.baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: e.spec.init === 'gaussian' ? 'gaussian' : true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: allLayers ? null : [...new Set(e.modules.map((m) => m.layer))],
    loftq_config: {},
    lora_alpha: e.spec.alpha * alphaFactor,
    lora_dropout: e.spec.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: e.spec.rank * rankFactor,
    rank_pattern: rankPattern,
    revision: null,
    target_modules: [...e.spec.targets],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: e.spec.rslora,
  };
  return new Map([
    ['adapter_config.json', new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n')],
    ['adapter_model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
  ]);
}
