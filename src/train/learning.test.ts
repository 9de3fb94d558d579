// Training is real: fine-tuning the built-in stories260K on a corpus with an invented style
// (src/studies/style-corpus.ts) lowers the loss on held-out stories of that style by more than
// half and makes the model write the invented name; and an adapter
// trained on the studio's example corpora ends its text where their stories end.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TARGET_PRESETS, type InitMethod } from '../adapters/config.ts';
import { createGpuModel, createRunner, type GpuModel } from '../model/forward.ts';
import { generateAll } from '../model/generate.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c } from '../model/tokenizer.ts';
import { builtIn } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { prepareDataset, type PreparedData } from './data.ts';
import { STYLE_NAME, styleCorpus } from '../studies/style-corpus.ts';
import { batchedScorer, meanLoss } from './evaluate.ts';
import { DEFAULT_SETTINGS, train } from './trainer.ts';

const gpu = useGpu();
const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
const tokenizer = fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin'));

/** The README's quick run: a rank-8 adapter on every linear module, lr 1e-2, batches of 4. */
const quickRun = (model: GpuModel, data: PreparedData, init: InitMethod, steps: number) =>
  train({
    gpu: gpu(),
    model,
    baseModel: 'stories260K',
    data,
    config: {
      lora: {
        rank: 8,
        alpha: 16,
        rslora: false,
        targets: TARGET_PRESETS['all-linear'],
        dropout: 0,
        init,
      },
      train: {
        ...DEFAULT_SETTINGS,
        steps,
        lr: 1e-2,
        batchSize: 4,
        warmupSteps: 2,
        evalEvery: 0,
        checkpointEvery: 0,
      },
    },
  });

describe('fine-tuning stories260K on an invented style', () => {
  const options = { seqLen: 64, validationFraction: 0.1, seed: 0 };
  const data = prepareDataset(styleCorpus(120, 1), 'style.txt', tokenizer, options);
  // Stories the training never saw (another seed), all of them held out.
  const heldOut = prepareDataset(styleCorpus(24, 2), 'held-out.txt', tokenizer, {
    ...options,
    validationFraction: 0,
  }).train;

  // LoRA alone: PiSSA's and every other init's learning on this corpus is measured by the init
  // study (docs/initialisations.md), and each init's gradients are checked in init.test.ts.
  it.each(['lora'] satisfies InitMethod[])(
    '%s: held-out loss falls below half, and greedy text names the character',
    async (init) => {
      const model = createGpuModel(gpu(), config, weights);
      try {
        const before =
          (await meanLoss(batchedScorer(gpu(), model.transformer, 4), heldOut))?.loss ?? NaN;
        const result = await quickRun(model, data, init, 20);
        const view = result.adapter.view(model.transformer);
        const after = (await meanLoss(batchedScorer(gpu(), view, 4), heldOut))?.loss ?? NaN;
        const runner = createRunner(gpu(), view);
        const prompt = tokenizer.encode('Once upon a time');
        const text = tokenizer.decode([
          ...prompt,
          ...(await generateAll(runner, prompt, { maxNewTokens: 40 })),
        ]);
        runner.dispose();
        result.adapter.dispose();

        expect(result.status).toBe('done');
        expect(before).toBeGreaterThan(1.5);
        expect(after, `held-out loss ${before.toFixed(3)} → ${after.toFixed(3)}`).toBeLessThan(
          before / 2,
        );
        expect(text).toContain(STYLE_NAME);
        // The base model has never seen the name.
        const baseText = tokenizer.decode([
          ...prompt,
          ...(await generateAll(model, prompt, { maxNewTokens: 40 })),
        ]);
        expect(baseText).not.toContain(STYLE_NAME);
      } finally {
        model.dispose();
      }
    },
    // 20 training steps with evaluation: over a minute when the suite's other files share the cores.
    300_000,
  );
});

describe('an adapter trained on the example corpora learns to stop', () => {
  const MAX_NEW = 200;

  it.each(['zimmy-stories.txt', 'snorp-stories.txt'])(
    '%s: greedy text ends at the end of a story, not in junk',
    async (file) => {
      const corpus = readFileSync(
        new URL(`../../public/datasets/${file}`, import.meta.url),
        'utf8',
      );
      const data = prepareDataset(corpus, file, tokenizer, {
        seqLen: 64,
        validationFraction: 0.1,
        seed: 0,
      });
      const model = createGpuModel(gpu(), config, weights);
      try {
        // A style is learnt in 40 steps, and so is where a story ends.
        const result = await quickRun(model, data, 'lora', 40);
        const runner = createRunner(gpu(), result.adapter.view(model.transformer));
        // A story's usual opening, and the first words of the corpus's own first story.
        const openings = ['Once upon a time', corpus.split(/\s+/).slice(0, 3).join(' ')];
        for (const opening of openings) {
          const prompt = tokenizer.encode(opening);
          const tokens = await generateAll(runner, prompt, { maxNewTokens: MAX_NEW });
          const text = tokenizer.decode([...prompt, ...tokens]);
          expect(tokens.length, `did not stop: ${text}`).toBeLessThan(MAX_NEW);
          expect(text, 'ends where a story of the corpus ends').toMatch(/[.!?]"?$/);
          expect(text).not.toContain('\uFFFD');
        }
        runner.dispose();
        result.adapter.dispose();
      } finally {
        model.dispose();
      }
    },
    300_000,
  );
});
