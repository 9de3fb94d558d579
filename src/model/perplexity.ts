import type { Runner } from './forward.ts';

export interface LossReport {
  /** Predicted tokens (every token after the first of each window). */
  tokens: number;
  /** Mean negative log-likelihood in nats. */
  loss: number;
  perplexity: number;
}

/**
 * Mean next-token cross-entropy of `tokens` under the model, in windows of the model's context
 * (each window starts a fresh cache). Log-softmax in f64 on the host.
 */
export async function meanLoss(model: Runner, tokens: readonly number[]): Promise<LossReport> {
  const window = model.config.maxPositions;
  const vocab = model.config.vocabSize;
  let total = 0;
  let count = 0;
  for (let start = 0; start + 1 < tokens.length; start += window) {
    const chunk = tokens.slice(start, start + window);
    const logits = await model.forwardAll(chunk, 0);
    for (let t = 0; t + 1 < chunk.length; t++) {
      total += negativeLogLikelihood(logits.subarray(t * vocab, (t + 1) * vocab), chunk[t + 1]);
      count++;
    }
  }
  if (count === 0) throw new RangeError('perplexity needs at least two tokens');
  const loss = total / count;
  return { tokens: count, loss, perplexity: Math.exp(loss) };
}

export function negativeLogLikelihood(logits: ArrayLike<number>, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return Math.log(sum) + max - logits[target];
}

/**
 * Mean loss per target of packed sequences (inputs and their next-token targets, −1 where a
 * position is not scored), one forward pass per sequence; null when no position is scored.
 */
export async function meanTargetLoss(
  model: Runner,
  sequences: readonly { input: ArrayLike<number>; target: ArrayLike<number> }[],
): Promise<number | null> {
  const vocab = model.config.vocabSize;
  let total = 0;
  let count = 0;
  for (const { input, target } of sequences) {
    const logits = await model.forwardAll(Array.from(input), 0);
    for (let t = 0; t < target.length; t++) {
      if (target[t] < 0) continue;
      total += negativeLogLikelihood(logits.subarray(t * vocab, (t + 1) * vocab), target[t]);
      count++;
    }
  }
  return count > 0 ? total / count : null;
}
