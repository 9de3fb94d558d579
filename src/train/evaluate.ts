// The one way a loss is measured on held-out tokens: training's validation loss, the merge report
// and its sweeps, `lora-studio perplexity` and the studio's perplexity. Text is cut into
// sequences (inputs with next-token targets, −1 where a position is not scored); a scorer sums
// the negative log-likelihood of the scored targets, either by the GPU's batched training forward
// or by any Runner (the CPU reference, or the GPU's cached forward); the mean is per scored token.
import type { Gpu } from '../gpu/device.ts';
import type { Runner } from '../model/forward.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Sequence } from './data.ts';
import { batchLoss, tokenBatch } from './step.ts';

export interface LossReport {
  /** Scored (predicted) tokens. */
  tokens: number;
  /** Mean negative log-likelihood in nats. */
  loss: number;
  perplexity: number;
}

/** The summed negative log-likelihood of the sequences' scored targets, and how many there were. */
export type SequenceScorer = (
  sequences: readonly Sequence[],
) => Promise<{ total: number; count: number }>;

/** How many targets of a sequence or batch are scored. */
export const scoredCount = (target: Int32Array) => target.reduce((n, t) => (t >= 0 ? n + 1 : n), 0);

/** On the GPU: the training forward over micro-batches of `batchSize` equally long sequences. */
export function batchedScorer(gpu: Gpu, view: Transformer, batchSize: number): SequenceScorer {
  return async (sequences) => {
    let total = 0;
    let count = 0;
    for (let i = 0; i < sequences.length; i += batchSize) {
      const batch = tokenBatch(sequences.slice(i, i + batchSize));
      total += await batchLoss(gpu, view, batch);
      count += scoredCount(batch.targets);
    }
    return { total, count };
  };
}

/** With a Runner: one fresh forward pass per sequence, log-softmax in f64 on the host. */
export function runnerScorer(model: Runner): SequenceScorer {
  const vocab = model.config.vocabSize;
  return async (sequences) => {
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
    return { total, count };
  };
}

/** The mean loss per scored token; null when nothing is scored. */
export async function meanLoss(
  score: SequenceScorer,
  sequences: readonly Sequence[],
): Promise<LossReport | null> {
  const { total, count } = await score(sequences);
  if (count === 0) return null;
  const loss = total / count;
  return { tokens: count, loss, perplexity: Math.exp(loss) };
}

/**
 * A token stream as windows of the model's context (each a fresh sequence): every token after
 * the first of a window is scored.
 */
export function textSequences(tokens: readonly number[], window: number): Sequence[] {
  const sequences: Sequence[] = [];
  for (let start = 0; start + 1 < tokens.length; start += window) {
    const chunk = tokens.slice(start, start + window);
    const target = new Int32Array(chunk.length).fill(-1);
    for (let t = 0; t + 1 < chunk.length; t++) target[t] = chunk[t + 1];
    sequences.push({ input: Uint32Array.from(chunk), target });
  }
  return sequences;
}

export function negativeLogLikelihood(logits: ArrayLike<number>, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return Math.log(sum) + max - logits[target];
}
