// S²FT (Yang et al. 2024, "S²FT: Efficient, Scalable and Generalizable LLM Fine-tuning by
// Structured Sparsity"): per layer, a few attention heads and MLP channels are chosen and exactly
// the base weights that read them train — the attention output projection's columns of the chosen
// heads, the down projection's columns of the chosen channels. Such a ΔW is sparse by columns,
// and so exactly a LoRA: A holds one-hot rows selecting the columns (frozen), B the trained
// columns (from zero), with scaling 1 so that B is the weights' change itself. It exports as a
// plain PEFT LoRA (per-module ranks in rank_pattern) and composes on the board by addition like
// any other. This file decides which modules train and how many columns each: no GPU code.
import type { ModelConfig } from '../model/config.ts';
import { modulePath, resolveTargets } from '../model/architecture.ts';
import type { AdaptedModule, LoraSpec } from './config.ts';

/** The share of each layer's heads and channels S²FT trains when the spec names none. */
export const DEFAULT_DENSITY = 0.1;

/**
 * The attention output and MLP down projections of the spec's layers (those its targets
 * include), each with rank = the columns it trains: density × heads (at least one) whole heads
 * on the attention output, density × channels (at least one) on the down projection.
 */
export function s2ftModules(config: ModelConfig, spec: LoraSpec): AdaptedModule[] {
  const density = spec.density ?? DEFAULT_DENSITY;
  if (!(density > 0 && density <= 1))
    throw new RangeError(`LoRA settings: S²FT's density must be in (0, 1] (got ${density})`);
  const { arch } = config;
  const targeted = resolveTargets(arch, spec.targets);
  const structured = arch.modules.filter(
    (m) => (m.role === 'o' || m.role === 'down') && targeted.includes(m.name),
  );
  if (structured.length === 0)
    throw new RangeError(
      `LoRA settings: S²FT trains the attention output and MLP down projections (${arch.modules
        .filter((m) => m.role === 'o' || m.role === 'down')
        .map((m) => m.name)
        .join(', ')}), and the targets include neither`,
    );
  const layers = spec.layers ?? Array.from({ length: config.numLayers }, (_, l) => l);
  return [...layers]
    .sort((a, b) => a - b)
    .flatMap((layer) =>
      structured.map((m): AdaptedModule => {
        // A head's columns of the attention output are its headDim outputs.
        const group = m.role === 'o' ? config.headDim : 1;
        const rank = Math.max(1, Math.round((density * m.in) / group)) * group;
        // Scaling 1: alpha = r (√r with rsLoRA).
        const alpha = spec.rslora ? Math.sqrt(rank) : rank;
        return {
          path: modulePath(arch, layer, m),
          layer,
          module: m.name,
          rank,
          alpha,
          scale: 1,
          in: m.in,
          out: m.out,
          group,
        };
      }),
    );
}

/**
 * The input columns a module trains, ascending: rank / group whole groups of `group` columns
 * drawn without replacement by the seeded `random` (S²FT's random selection).
 */
export function s2ftColumns(
  module: Pick<AdaptedModule, 'in' | 'rank' | 'group'>,
  random: () => number,
): number[] {
  const group = module.group ?? 1;
  const groups = Array.from({ length: Math.floor(module.in / group) }, (_, g) => g);
  const count = module.rank / group;
  if (!Number.isInteger(count) || count > groups.length)
    throw new RangeError(
      `S²FT: ${module.rank} columns are not whole groups of ${group} among ${module.in}`,
    );
  // A partial Fisher–Yates shuffle: the first `count` places are a uniform draw.
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (groups.length - i));
    [groups[i], groups[j]] = [groups[j], groups[i]];
  }
  return groups
    .slice(0, count)
    .sort((a, b) => a - b)
    .flatMap((g) => Array.from({ length: group }, (_, k) => g * group + k));
}
