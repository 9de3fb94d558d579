// The backward pass is the true gradient: GPU adapter gradients against central finite
// differences of the f64 CPU reference loss, on tiny random models, for every module type.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../gpu/device.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import type { ModelConfig } from '../model/config.ts';
import { createGpuModel } from '../model/forward.ts';
import { LINEAR_MODULES, modulePath, moduleShape } from '../model/modules.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import type { ModelWeights } from '../model/weights.ts';
import { finiteDifferenceErrors } from '../testing/finite-differences.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import type { FactorGradients } from './backward.ts';
import { cpuBatchLoss, type CpuTerm } from './cpu/loss.ts';
import { batchLoss, type TokenBatch } from './step.ts';

const gpu = useGpu();

function randomTerms(config: ModelConfig, rank: number, seed: number, dropout?: number) {
  const random = seededRandom(seed);
  const terms = new Map<string, CpuTerm>();
  for (let l = 0; l < config.numLayers; l++)
    for (const module of LINEAR_MODULES) {
      const s = moduleShape(config, module);
      terms.set(modulePath(l, module), {
        a: Float64Array.from(randomArray(random, rank * s.in, -0.4, 0.4)),
        b: Float64Array.from(randomArray(random, s.out * rank, -0.4, 0.4)),
        rank,
        scale: 1.7,
        dropout,
      });
    }
  return terms;
}

function randomBatch(config: ModelConfig, sequences: number, seqLen: number, seed: number) {
  const random = seededRandom(seed);
  const n = sequences * seqLen;
  const ids = Uint32Array.from({ length: n }, () => Math.floor(random() * config.vocabSize));
  // Every fourth target is masked, as prompts and padding are.
  const targets = Int32Array.from({ length: n }, (_, i) =>
    i % 4 === 3 ? -1 : Math.floor(random() * config.vocabSize),
  );
  return { ids, targets, seqLen };
}

interface GpuSetup {
  view: Transformer;
  grads: Map<string, FactorGradients>;
  tensors: Tensor[];
  dispose(): void;
}

function onGpu(g: Gpu, config: ModelConfig, weights: ModelWeights, terms: Map<string, CpuTerm>) {
  const model = createGpuModel(g, config, weights);
  const gpuTerms = new Map<string, AdapterTerm[]>();
  const grads = new Map<string, FactorGradients>();
  const tensors: Tensor[] = [];
  for (const [path, term] of terms) {
    const a = uploadTensor(
      g,
      Float32Array.from(term.a),
      [term.rank, term.a.length / term.rank],
      'f32',
    );
    const b = uploadTensor(
      g,
      Float32Array.from(term.b),
      [term.b.length / term.rank, term.rank],
      'f32',
    );
    gpuTerms.set(path, [{ a, b, scale: term.scale, dropout: term.dropout }]);
    const grad = {
      a: createTensor(g, a.shape, 'f32', 'dA'),
      b: createTensor(g, b.shape, 'f32', 'dB'),
    };
    grads.set(path, grad);
    tensors.push(a, b, grad.a, grad.b);
  }
  model.setAdapters(gpuTerms);
  return {
    view: model.transformer,
    grads,
    tensors,
    dispose() {
      releaseTensor(g, ...tensors);
      model.dispose();
    },
  } satisfies GpuSetup;
}

/** max over tensors of ‖g − g_fd‖ / ‖g_fd‖ on sampled entries, and the loss both ways. */
async function gradientCheck(
  config: ModelConfig,
  options: { dropout?: number; recompute?: boolean; sequences?: number; seqLen?: number } = {},
) {
  const weights = randomWeights(config, 7);
  const terms = randomTerms(config, 3, 11, options.dropout);
  const data: TokenBatch = randomBatch(config, options.sequences ?? 2, options.seqLen ?? 5, 5);
  const dropoutSeed = options.dropout ? 1234 : undefined;
  const cpuLoss = () => cpuBatchLoss({ config, weights, terms, ...data, dropoutSeed });
  const setup = onGpu(gpu(), config, weights, terms);
  try {
    const gpuLoss = await batchLoss(gpu(), setup.view, data, {
      grads: setup.grads,
      accumulate: false,
      gradScale: 1,
      dropoutSeed,
      recompute: options.recompute,
    });
    const errors = await finiteDifferenceErrors(gpu(), terms, setup.grads, cpuLoss);
    return { gpuLoss, cpuLoss: cpuLoss(), errors };
  } finally {
    setup.dispose();
  }
}

describe('adapter gradients', () => {
  it('match finite differences for every module type (GQA, untied head, masked targets)', async () => {
    const { gpuLoss, cpuLoss, errors } = await gradientCheck(tinyConfig());
    expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
    expect(errors.length).toBe(2 * 2 * LINEAR_MODULES.length);
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });

  it('match with q/k/v biases, a tied head and longer sequences', async () => {
    const config = tinyConfig({ attentionBias: true, tieWordEmbeddings: true, numKvHeads: 4 });
    const { errors } = await gradientCheck(config, { sequences: 3, seqLen: 7 });
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });

  it('match with dropout on the adapter inputs (the same masks forward and backward)', async () => {
    const { gpuLoss, cpuLoss, errors } = await gradientCheck(tinyConfig(), { dropout: 0.3 });
    expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });

  it('are the same when activations are recomputed in the backward pass', async () => {
    const { errors } = await gradientCheck(tinyConfig(), { recompute: true });
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });
});
