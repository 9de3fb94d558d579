// What intruder dimensions are measured with and reported as (src/analysis/intruders.ts), apart
// from the GPU code that measures them: the UI imports these.

export interface IntruderSettings {
  /** Top singular vectors of W_t examined. */
  k: number;
  /** ε: a vector matching no pre-trained one above this cosine is an intruder. */
  threshold: number;
}

/** The paper's k = 10, and ε = 0.5 from the middle of the range it sweeps. */
export const INTRUDER_DEFAULTS: IntruderSettings = { k: 10, threshold: 0.5 };

export interface Intrusion {
  /** How many of the top k are intruders. */
  count: number;
  /** For each of the top k (by singular value), its best |cosine| with W₀'s singular vectors. */
  similarities: number[];
}

export interface ModuleIntrusion extends Intrusion {
  path: string;
}

/** Refuses settings that measure nothing: k a whole number ≥ 1, ε in (0, 1]. */
export function checkIntruderSettings({ k, threshold }: IntruderSettings): void {
  if (!(Number.isInteger(k) && k >= 1))
    throw new RangeError(
      `intruder dimensions: k (the top singular vectors examined) must be a whole number ≥ 1 (got ${k})`,
    );
  if (!(threshold > 0 && threshold <= 1))
    throw new RangeError(
      `intruder dimensions: the threshold ε must be in (0, 1] (got ${threshold})`,
    );
}
