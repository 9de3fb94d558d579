// Hugging Face config.json → ModelConfig through the families table (src/model/families.ts), and
// the weights an architecture reads. Only what the forward pass implements is accepted; anything
// else is refused by name rather than run wrongly. Unknown keys are ignored.
import type { Architecture } from './architecture.ts';
import type { ModelConfig } from './config.ts';
import { FormatError } from './errors.ts';
import { familyOf, familyOfType } from './families.ts';
import { ConfigReader } from './families/common.ts';

export { SUPPORTED_MODEL_TYPES } from './families.ts';

export function parseHfConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError(file, 'is not a JSON object');
  }
  const c = json as Record<string, unknown>;
  return familyOfType(c.model_type, file).build(new ConfigReader(c, file));
}

/** A weight as the checkpoint stores it: its shape there, and whether loading transposes it. */
export interface ExpectedWeight {
  shape: number[];
  /** GPT-2's Conv1D weights are stored [in, out]; the engine keeps [out, in]. */
  transposed: boolean;
}

/** Every weight the forward pass reads, by name, with the shape the checkpoint stores. */
export function expectedWeights(config: ModelConfig): Map<string, ExpectedWeight> {
  const { arch, hiddenSize: d, vocabSize, headDim } = config;
  const out = new Map<string, ExpectedWeight>();
  const add = (name: string, shape: number[], transposed = false) =>
    out.set(name, { shape, transposed });
  const norm = (prefix: string, width = d) => {
    add(`${prefix}.weight`, [width]);
    if (arch.norm.kind === 'layer') add(`${prefix}.bias`, [width]);
  };
  add(`${arch.embedding}.weight`, [vocabSize, d]);
  if (arch.positions) add(`${arch.positions}.weight`, [config.maxPositions, d]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `${arch.layerPrefix}${l}.`;
    for (const key of ['input', 'postAttention', 'mlp', 'postMlp'] as const) {
      const path = arch.norms[key];
      if (path) norm(p + path);
    }
    if (arch.qkNorm) {
      norm(p + arch.qkNorm.q, headDim);
      norm(p + arch.qkNorm.k, headDim);
    }
    for (const m of arch.modules) {
      add(`${p}${m.path}.weight`, m.conv1d ? [m.in, m.out] : [m.out, m.in], m.conv1d);
      if (m.bias) add(`${p}${m.path}.bias`, [m.out]);
    }
  }
  norm(arch.norms.final);
  if (arch.head !== arch.embedding) add(`${arch.head}.weight`, [vocabSize, d]);
  return out;
}

/** The name a checkpoint's tensor has in the architecture (GPT-2 files may omit a prefix). */
export function canonicalWeightName(arch: Architecture, name: string): string {
  return familyOf(arch).canonicalName?.(name) ?? name;
}
