// Choosing the next token from logits: greedy, or sampled with temperature, top-k, top-p
// (nucleus) and a repetition penalty, from a seeded generator so that runs repeat exactly.
import { seededRandom } from '../linalg/random.ts';

export interface SamplingOptions {
  /** 0 (the default) picks the most likely token. */
  temperature?: number;
  /** Keep only the k most likely tokens (0: all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1: all). */
  topP?: number;
  /** > 1 discourages tokens already in the context (CTRL / HF convention). */
  repetitionPenalty?: number;
  seed?: number;
}

export type Sampler = (logits: Float32Array, context: readonly number[]) => number;

export function createSampler(options: SamplingOptions = {}): Sampler {
  const { temperature = 0, topK = 0, topP = 1, repetitionPenalty = 1, seed = 0 } = options;
  if (!(temperature >= 0) || !(topP > 0 && topP <= 1) || !(topK >= 0) || !(repetitionPenalty > 0)) {
    throw new RangeError(`invalid sampling options ${JSON.stringify(options)}`);
  }
  const random = seededRandom(seed);
  return (raw, context) => {
    const logits = Float64Array.from(raw);
    if (repetitionPenalty !== 1) {
      for (const id of new Set(context)) {
        logits[id] =
          logits[id] > 0 ? logits[id] / repetitionPenalty : logits[id] * repetitionPenalty;
      }
    }
    if (temperature === 0) return argmax(logits);
    // Candidates by descending logit, cut by top-k, then softmax and the top-p cut.
    let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    if (topK > 0) order = order.slice(0, topK);
    const max = logits[order[0]];
    const weights = order.map((id) => Math.exp((logits[id] - max) / temperature));
    const total = weights.reduce((a, b) => a + b, 0);
    let kept = order.length;
    if (topP < 1) {
      let cumulative = 0;
      kept =
        order.findIndex((_, i) => (cumulative += weights[i] / total) >= topP) + 1 || order.length;
    }
    const mass = weights.slice(0, kept).reduce((a, b) => a + b, 0);
    let r = random() * mass;
    for (let i = 0; i < kept; i++) {
      r -= weights[i];
      if (r < 0) return order[i];
    }
    return order[kept - 1];
  };
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
