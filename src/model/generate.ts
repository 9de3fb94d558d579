import type { Runner } from './forward.ts';
import { createSampler, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
}

/**
 * Tokens following `prompt` (at least one token, e.g. BOS), one at a time: the prompt runs as
 * one prefill, then each sampled token is fed back. Stops before an end token (the model's
 * eosTokenIds), after `maxNewTokens`, or at the end of the model's context.
 */
export async function* generateTokens(
  model: Runner,
  prompt: readonly number[],
  options: GenerateOptions,
): AsyncGenerator<number> {
  const sample = createSampler(options);
  const stop = new Set(model.config.eosTokenIds);
  const context = [...prompt];
  let logits = await model.forward(prompt, 0);
  for (let i = 0; i < options.maxNewTokens; i++) {
    const next = sample(logits, context);
    if (stop.has(next)) return;
    yield next;
    context.push(next);
    if (context.length >= model.config.maxPositions) return;
    logits = await model.forward([next], context.length - 1);
  }
}

/** All of generateTokens at once. */
export async function generateAll(
  model: Runner,
  prompt: readonly number[],
  options: GenerateOptions,
): Promise<number[]> {
  const out: number[] = [];
  for await (const token of generateTokens(model, prompt, options)) out.push(token);
  return out;
}
