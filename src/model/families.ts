// The model families the engine runs, one file each under families/. Adding a family: its
// file, its line here, its row in docs/models.md, and its fixture with reference logits.
import { FormatError } from './errors.ts';
import { isAttentionModule, type ModuleRole, type ModuleSpec } from './architecture.ts';
import type { ModelConfig } from './config.ts';
import { ConfigReader, type Family } from './families/common.ts';
import { gemma3 } from './families/gemma3.ts';
import { gpt2 } from './families/gpt2.ts';
import { llama, qwen2 } from './families/llama.ts';
import { phi3 } from './families/phi3.ts';
import { qwen3 } from './families/qwen3.ts';
import { smollm3 } from './families/smollm3.ts';

export type { Family };

export const FAMILIES: readonly Family[] = [llama, qwen2, qwen3, gemma3, smollm3, phi3, gpt2];

/** Every model_type some family reads. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = FAMILIES.flatMap((f) => f.modelTypes);

export function familyOfType(modelType: unknown, file = 'config.json'): Family {
  const family = FAMILIES.find((f) => f.modelTypes.includes(modelType as string));
  if (!family)
    throw new FormatError(
      file,
      `model_type ${JSON.stringify(modelType)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
    );
  return family;
}

/** The family an architecture was built by. */
export function familyOf(arch: { family: string }): Family {
  const family = FAMILIES.find((f) => f.name === arch.family);
  if (!family) throw new Error(`unknown family ${arch.family}`);
  return family;
}

/** A family's example model (families/common.ts's `example`), with changes to its config. */
export function exampleConfig(name: string, changes: Record<string, unknown> = {}): ModelConfig {
  const family = FAMILIES.find((f) => f.name === name);
  if (!family) throw new Error(`no family ${name}`);
  return family.build(new ConfigReader({ ...family.example, ...changes }));
}

let known: ReadonlyMap<string, ModuleSpec> | undefined;

/**
 * Every family's modules by name, in forward order (Llama's first): what names module types of
 * adapters read without their model (inspect, merges, grids) and orders them.
 */
export function knownModules(): ReadonlyMap<string, ModuleSpec> {
  const roles: readonly ModuleRole[] = ['q', 'k', 'v', 'qkv', 'o', 'gate', 'up', 'gate_up', 'down'];
  known ??= new Map(
    FAMILIES.flatMap((f) => exampleConfig(f.name).arch.modules)
      .sort((x, y) => roles.indexOf(x.role) - roles.indexOf(y.role))
      .map((m) => [m.name, m] as const),
  );
  return known;
}

/** Known module names first, in forward order, then the others by name. */
export function moduleOrder(x: string, y: string): number {
  const names = [...knownModules().keys()];
  const rank = (name: string) => (names.includes(name) ? names.indexOf(name) : names.length);
  return rank(x) - rank(y) || x.localeCompare(y);
}

/**
 * A module path's type without its model: the longest known module name it ends with (GPT-2's
 * `attn.c_proj`), else its last segment.
 */
export function moduleKind(path: string): string {
  let best = path.slice(path.lastIndexOf('.') + 1);
  for (const name of knownModules().keys())
    if (name.length > best.length && (path === name || path.endsWith(`.${name}`))) best = name;
  return best;
}

/** Whether a module type (by name, without its model) is an attention projection. */
export function isAttentionKind(name: string): boolean {
  const spec = knownModules().get(name);
  return spec !== undefined && isAttentionModule(spec);
}
