// Whether an adapter's numbers can be applied to a model: non-finite factors, or a scaling that
// puts s·B·A beyond float32 (lora_alpha 1e308), would turn every logit into NaN and every token
// into <unk> without a word. Reading and inspecting such an adapter is fine; applying it is
// refused unless the user insists.
import type { PeftAdapter } from './peft-read.ts';

/** float32's largest finite value. */
const F32_MAX = 3.4028234663852886e38;

function maxAbs(values: Float32Array): number {
  let max = 0;
  for (const v of values) max = Math.max(max, Math.abs(v));
  return max;
}

/** Why the adapter cannot be applied as it is, in one line; null when it can. */
export function applyRefusal(adapter: PeftAdapter): string | null {
  if (adapter.nonFinite.length > 0) {
    const count = adapter.nonFinite.length;
    return `${adapter.name}: ${count} tensor${count > 1 ? 's hold' : ' holds'} NaN or infinite values (${adapter.nonFinite[0].tensor}${count > 1 ? ', …' : ''})`;
  }
  for (const [path, m] of adapter.modules) {
    // An entry of s·B·A is at most |s|·rank·max|B|·max|A|.
    const bound = Math.abs(m.scale) * m.rank * maxAbs(m.b) * maxAbs(m.a);
    if (!(bound <= F32_MAX))
      return `${adapter.name}: ${path}'s scaling ${m.scale.toPrecision(3)} (lora_alpha / r) puts its update beyond float32`;
  }
  return null;
}
