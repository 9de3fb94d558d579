// The CPU reference (reference.ts) as a Runner: what generation, perplexity and the merge
// report run on where WebGPU is missing. Exact and slow; each call first lets the event loop
// turn, so a worker running it still hears its messages (a cancel) between calls.
import { nextTurn } from '../../linalg/cpu/turns.ts';
import type { Runner } from '../forward.ts';
import type { ModelConfig } from '../config.ts';
import type { ModelWeights } from '../weights.ts';
import { ReferenceModel } from './reference.ts';

export function cpuRunner(config: ModelConfig, weights: ModelWeights): Runner {
  const model = new ReferenceModel(config, weights);
  const vocab = config.vocabSize;

  async function run(tokens: readonly number[], pos0: number, all: boolean) {
    if (tokens.length === 0) throw new RangeError('forward: no tokens');
    if (pos0 + tokens.length > config.maxPositions)
      throw new RangeError(
        `forward: positions up to ${pos0 + tokens.length} exceed the model's ${config.maxPositions}`,
      );
    await nextTurn();
    const logits = new Float32Array((all ? tokens.length : 1) * vocab);
    const rows = model.run(tokens, { pos0 });
    rows.forEach((row, i) => {
      if (all) logits.set(row, i * vocab);
      else if (i === tokens.length - 1) logits.set(row);
    });
    return logits;
  }

  return {
    config,
    forward: (tokens, pos0) => run(tokens, pos0, false),
    forwardAll: (tokens, pos0) => run(tokens, pos0, true),
    dispose: () => undefined,
  };
}
