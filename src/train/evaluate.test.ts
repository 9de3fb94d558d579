// The one loss measurement: a Runner's windows against the CPU reference stepped token by token,
// and the GPU's batched training forward against the Runner on the same sequences.
import { describe, expect, it } from 'vitest';
import { ReferenceModel } from '../model/cpu/reference.ts';
import { createGpuModel } from '../model/forward.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { builtIn, fixture } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import {
  batchedScorer,
  meanLoss,
  negativeLogLikelihood,
  runnerScorer,
  textSequences,
} from './evaluate.ts';

const gpu = useGpu();

describe('mean loss', () => {
  const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
  const small = { ...config, maxPositions: 40 };
  const tok = readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin');
  const text = new TextDecoder().decode(fixture('models/llama2c/stories260K.greedy200.txt'));
  const tokens = tok.encode(text).slice(0, 100);

  it('of a text in context windows matches the CPU reference stepped token by token', async () => {
    const model = createGpuModel(gpu(), small, weights);
    try {
      const report = (await meanLoss(runnerScorer(model), textSequences(tokens, 40)))!;
      let total = 0;
      let count = 0;
      for (let start = 0; start + 1 < tokens.length; start += 40) {
        const cpu = new ReferenceModel(small, weights);
        const chunk = tokens.slice(start, start + 40);
        for (let t = 0; t + 1 < chunk.length; t++) {
          total += negativeLogLikelihood(cpu.step(chunk[t], t), chunk[t + 1]);
          count++;
        }
      }
      expect(report.tokens).toBe(count);
      expect(Math.abs(report.loss - total / count)).toBeLessThan(1e-4);
      // The model's own greedy text is very likely under it.
      expect(report.perplexity).toBeLessThan(3);
    } finally {
      model.dispose();
    }
  });

  it('is the same by the batched training forward and by a Runner', async () => {
    const model = createGpuModel(gpu(), small, weights);
    try {
      // Equal windows (the batched forward takes sequences of one length), some targets unscored.
      const sequences = textSequences(tokens.slice(0, 81), 20).slice(0, 4);
      sequences[1].target.fill(-1, 0, 7);
      const byRunner = (await meanLoss(runnerScorer(model), sequences))!;
      const batched = (await meanLoss(batchedScorer(gpu(), model.transformer, 3), sequences))!;
      expect(batched.tokens).toBe(byRunner.tokens);
      expect(batched.tokens).toBe(4 * 19 - 7);
      expect(Math.abs(batched.loss - byRunner.loss)).toBeLessThan(1e-4);
      expect(await meanLoss(runnerScorer(model), textSequences(tokens.slice(0, 1), 40))).toBeNull();
    } finally {
      model.dispose();
    }
  });
});
