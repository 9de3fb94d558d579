// The linear modules of a Llama-family layer, by the names HF and PEFT use.
import type { ModelConfig } from './config.ts';

export const LINEAR_MODULES = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type LinearModule = (typeof LINEAR_MODULES)[number];

const ATTENTION: ReadonlySet<LinearModule> = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);

/** `model.layers.3.self_attn.q_proj`: the module's path, the prefix of its weight's name. */
export function modulePath(layer: number, module: LinearModule): string {
  return `model.layers.${layer}.${ATTENTION.has(module) ? 'self_attn' : 'mlp'}.${module}`;
}

/** Input and output widths of a module's weight (out, in). */
export function moduleShape(
  config: ModelConfig,
  module: LinearModule,
): { in: number; out: number } {
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  switch (module) {
    case 'q_proj':
      return { in: d, out: q };
    case 'k_proj':
    case 'v_proj':
      return { in: d, out: kv };
    case 'o_proj':
      return { in: q, out: d };
    case 'gate_proj':
    case 'up_proj':
      return { in: d, out: ff };
    case 'down_proj':
      return { in: ff, out: d };
  }
}
