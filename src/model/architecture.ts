// A model's architecture as data: what each layer computes, which weights it reads and where the
// linear modules that adapters attach to sit. One function per family (src/model/families/)
// builds it from config.json; the GPU transformer, its backward pass and the CPU reference read
// it and never ask which family a model is.

/** What a linear module computes inside its layer. Fused modules hold several outputs side by side. */
export type ModuleRole = 'q' | 'k' | 'v' | 'qkv' | 'o' | 'gate' | 'up' | 'gate_up' | 'down';

/** One linear module of a layer, as PEFT and the checkpoint name it. */
export interface ModuleSpec {
  /**
   * The module's name in adapters, grids and target lists: the shortest dotted suffix of its path
   * that is unique within a layer (`q_proj`; GPT-2's two `c_proj` are `attn.c_proj`, `mlp.c_proj`).
   */
  name: string;
  /** Its path inside a layer (`self_attn.q_proj`): the prefix of its weight's name. */
  path: string;
  role: ModuleRole;
  in: number;
  out: number;
  bias: boolean;
  /**
   * GPT-2's Conv1D: the checkpoint stores the weight [in, out] (PEFT's fan_in_fan_out). It is
   * transposed to [out, in] when loaded, so every module computes x·Wᵀ the same way.
   */
  conv1d: boolean;
}

/** RMSNorm (x / rms · (offset + w); Gemma's offset is 1) or LayerNorm with bias. */
export interface NormSpec {
  kind: 'rms' | 'layer';
  eps: number;
  offset: number;
}

/** One table of rotary frequencies: θ_j per rotated pair, and what HF multiplies cos and sin by. */
export interface RopeSpec {
  invFreq: Float64Array;
  attentionFactor: number;
}

export interface LayerSpec {
  /** Index into `ropes`, or null: this layer uses no positions in attention (SmolLM3's NoPE). */
  rope: number | null;
  /** Sliding window: a query sees itself and the window − 1 keys before it; null: all before it. */
  window: number | null;
}

export type Activation = 'silu' | 'gelu_tanh';

export interface Architecture {
  /** The family's name in the families table (src/model/families.ts). */
  family: string;
  /** Where layer l's weights live: `${layerPrefix}${l}.`. */
  layerPrefix: string;
  /** The layer's linear modules, in the order the forward pass runs them. */
  modules: readonly ModuleSpec[];
  norm: NormSpec;
  /**
   * Norm weights by path inside a layer: `input` before attention, `mlp` before the MLP;
   * Gemma's sandwich adds `postAttention` and `postMlp` on the two branches' outputs before the
   * residual add. `final` is a full path.
   */
  norms: { input: string; mlp: string; postAttention?: string; postMlp?: string; final: string };
  /** Qwen3/Gemma 3: RMSNorm over each head's q and k (one [headDim] weight), before RoPE. */
  qkNorm: { q: string; k: string } | null;
  /** What q·k is multiplied by (1/√headDim unless the family says otherwise). */
  attentionScale: number;
  /** How many of each head's values rotate (Phi-3's partial_rotary_factor); the rest pass. */
  rotaryDims: number;
  ropes: readonly RopeSpec[];
  layers: readonly LayerSpec[];
  activation: Activation;
  /** act(gate)·up (SwiGLU, GeGLU), or act(up) (GPT-2). */
  gatedMlp: boolean;
  /** The token embedding's path (its weight is `${embedding}.weight`). */
  embedding: string;
  /** What the embedding is multiplied by (Gemma: √hidden in the checkpoint's dtype). */
  embedScale: number;
  /** GPT-2's learned position embedding path, or null. */
  positions: string | null;
  /** The output head's path: the embedding's when tied. */
  head: string;
  /** Final logits become cap·tanh(logits/cap) (Gemma 2/3 option), or null. */
  finalSoftcap: number | null;
}

/** `model.layers.3.self_attn.q_proj`: a module's full path, the prefix of its weight's name. */
export function modulePath(arch: Architecture, layer: number, module: ModuleSpec | string): string {
  const spec = typeof module === 'string' ? moduleSpec(arch, module) : module;
  return `${arch.layerPrefix}${layer}.${spec.path}`;
}

/** A module by name; throws for a name the architecture does not have. */
export function moduleSpec(arch: Architecture, name: string): ModuleSpec {
  const spec = arch.modules.find((m) => m.name === name);
  if (!spec) throw new RangeError(`${arch.family} has no module ${name}`);
  return spec;
}

/** The layer and module a full path names, or null when it is not one of this model's modules. */
export function locateModule(
  arch: Architecture,
  path: string,
): { layer: number; module: ModuleSpec } | null {
  if (!path.startsWith(arch.layerPrefix)) return null;
  const rest = path.slice(arch.layerPrefix.length);
  const dot = rest.indexOf('.');
  const layer = Number(rest.slice(0, dot));
  if (!(dot > 0 && Number.isInteger(layer) && layer >= 0 && layer < arch.layers.length))
    return null;
  const module = arch.modules.find((m) => m.path === rest.slice(dot + 1));
  return module ? { layer, module } : null;
}

/**
 * Whether a target name (PEFT's target_modules entry, a preset's name) selects a module: the
 * name equals a dotted suffix of its path, as PEFT matches (`c_proj` selects both GPT-2's).
 */
export function targetMatches(module: ModuleSpec, target: string): boolean {
  return module.path === target || module.path.endsWith(`.${target}`);
}

/**
 * The module names a list of targets selects, in the architecture's order: names, dotted
 * suffixes, and the keywords `attention` (every attention projection) and `all-linear` (every
 * linear module of the layers, as PEFT's keyword: the output head is not one).
 */
export function resolveTargets(arch: Architecture, targets: readonly string[]): string[] {
  const selects = (m: ModuleSpec, t: string) =>
    t === 'all-linear' || (t === 'attention' ? isAttentionModule(m) : targetMatches(m, t));
  return arch.modules.filter((m) => targets.some((t) => selects(m, t))).map((m) => m.name);
}

/** The attention modules (those before the attention output's residual add). */
export function isAttentionModule(module: ModuleSpec): boolean {
  return ['q', 'k', 'v', 'qkv', 'o'].includes(module.role);
}

/** The columns of a fused module's output each role takes, in order. */
export function fusedParts(
  module: ModuleSpec,
  shape: { q: number; kv: number; ff: number },
): { role: ModuleRole; width: number }[] {
  switch (module.role) {
    case 'qkv':
      return [
        { role: 'q', width: shape.q },
        { role: 'k', width: shape.kv },
        { role: 'v', width: shape.kv },
      ];
    case 'gate_up':
      return [
        { role: 'gate', width: shape.ff },
        { role: 'up', width: shape.ff },
      ];
    default:
      return [{ role: module.role, width: module.out }];
  }
}
