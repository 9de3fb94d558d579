// The backward pass is the true gradient: GPU adapter gradients against central finite
// differences of the f64 CPU reference loss, on tiny random models, for every module type.
// DoRA's backward treats the row norms ‖W + s·B·A‖ as constants (detached), which is not the
// true gradient of the loss; it is exactly the true gradient of the same loss with the norms
// frozen at their current values. So DoRA is checked against finite differences of the reference
// loss with the norms held fixed: exact for m (the norms do not depend on it) and for A and B (the
// detached formula, by definition). A second check lets the norms move, to show the difference.
import { describe, expect, it } from 'vitest';
import { cpuDoraNorms } from '../adapters/variants/dora.ts';
import { variantEngine, type TrainedVariant } from '../adapters/variants/engine.ts';
import { variantEntry, type VariantName } from '../adapters/variants.ts';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import type { ModelConfig } from '../model/config.ts';
import { createGpuModel } from '../model/forward.ts';
import { modulePath } from '../model/architecture.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import type { ModelWeights } from '../model/weights.ts';
import { loadGgufWeights } from '../model/gguf/load.ts';
import { finiteDifferenceErrors } from '../testing/finite-differences.ts';
import { fixture } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { FAMILY_NAMES, familyConfig, randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import type { FactorGradients } from './backward.ts';
import { cpuBatchLoss, type CpuTerm } from '../model/cpu/reference.ts';
import { batchLoss, type TokenBatch } from './step.ts';

const gpu = useGpu();

function randomTerms(config: ModelConfig, rank: number, seed: number, dropout?: number) {
  const random = seededRandom(seed);
  const terms = new Map<string, CpuTerm>();
  for (let l = 0; l < config.numLayers; l++)
    for (const s of config.arch.modules) {
      terms.set(modulePath(config.arch, l, s), {
        a: Float64Array.from(randomArray(random, rank * s.in, -0.4, 0.4)),
        b: Float64Array.from(randomArray(random, s.out * rank, -0.4, 0.4)),
        rank,
        scale: 1.7,
        dropout,
      });
    }
  return terms;
}

function weightOf(weights: ModelWeights, path: string) {
  const w = weights.get(`${path}.weight`);
  if (!w) throw new Error(path);
  return w;
}

/** Adds DoRA to every term: magnitudes within ±30 % of the row norms, so that c ≠ 1. */
function addDora(weights: ModelWeights, terms: Map<string, CpuTerm>, seed: number) {
  const random = seededRandom(seed);
  for (const [path, term] of terms) {
    const w = weightOf(weights, path);
    const norm = cpuDoraNorms(w.data, term, w.shape[1]);
    const magnitude = norm.map((n) => n * (0.7 + 0.6 * random()));
    term.variant = variantEngine('dora').cpuTerm(w.data, term, { magnitude });
  }
}

/** Recomputes what each term's variant derives from A and B (DoRA's norms) at their values now. */
function followFactors(weights: ModelWeights, terms: Map<string, CpuTerm>, variant: VariantName) {
  for (const [path, term] of terms)
    term.variant = variantEngine(variant).cpuTerm(
      weightOf(weights, path).data,
      term,
      term.variant?.vectors ?? {},
    );
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

/**
 * The terms on the GPU as training holds them: the variant's state started from the factors,
 * then given the reference's vectors (DoRA's magnitudes) and refreshed, as a resumed run is.
 */
async function onGpu(
  g: Gpu,
  config: ModelConfig,
  weights: ModelWeights,
  terms: Map<string, CpuTerm>,
  variant: VariantName,
) {
  const model = createGpuModel(g, config, weights);
  const engine = variantEngine(variant);
  const gpuTerms = new Map<string, AdapterTerm[]>();
  const grads = new Map<string, FactorGradients>();
  const tensors: Tensor[] = [];
  const states: TrainedVariant[] = [];
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
    const gradA = createTensor(g, a.shape, 'f32', 'dA');
    const gradB = createTensor(g, b.shape, 'f32', 'dB');
    const grad: FactorGradients = { a: gradA, b: gradB };
    tensors.push(a, b, gradA, gradB);
    const weight = model.transformer.weight(`${path}.weight`);
    const state = await engine.startTraining(g, { a, b, scale: term.scale, weight });
    states.push(state);
    for (const { field } of variantEntry(variant).vectors) {
      const value = state.vectors[field];
      const reference = term.variant?.vectors[field];
      if (!value || !reference) throw new Error(`${path}: no ${field}`);
      g.device.queue.writeBuffer(value.buffer, 0, Float32Array.from(reference));
      grad[field] = createTensor(g, value.shape, 'f32', `d${field}`);
      tensors.push(grad[field]);
    }
    gpuTerms.set(path, [
      { a, b, scale: term.scale, dropout: term.dropout, variant: state.term(grad) },
    ]);
    grads.set(path, grad);
  }
  const keep = (t: Tensor) => {
    tensors.push(t);
    return t;
  };
  await run(g, (batch) => {
    for (const state of states) state.refresh?.(batch, keep);
  });
  model.setAdapters(gpuTerms);
  return {
    view: model.transformer,
    grads,
    tensors,
    dispose() {
      releaseTensor(g, ...tensors, ...states.flatMap((state) => state.tensors()));
      model.dispose();
    },
  } satisfies GpuSetup;
}

/** max over tensors of ‖g − g_fd‖ / ‖g_fd‖ on sampled entries, and the loss both ways. */
async function gradientCheck(
  config: ModelConfig,
  options: {
    dropout?: number;
    recompute?: boolean;
    sequences?: number;
    seqLen?: number;
    dora?: boolean;
    /** The base's weights (default: random); GGUF weights keep their quantized blocks. */
    weights?: ModelWeights;
  } = {},
) {
  const weights = options.weights ?? randomWeights(config, 7);
  const terms = randomTerms(config, 3, 11, options.dropout);
  if (options.dora) addDora(weights, terms, 13);
  const data: TokenBatch = randomBatch(config, options.sequences ?? 2, options.seqLen ?? 5, 5);
  const dropoutSeed = options.dropout ? 1234 : undefined;
  const cpuLoss = () => cpuBatchLoss({ config, weights, terms, ...data, dropoutSeed });
  const variant = options.dora ? 'dora' : 'lora';
  const setup = await onGpu(gpu(), config, weights, terms, variant);
  try {
    const gpuLoss = await batchLoss(gpu(), setup.view, data, {
      grads: setup.grads,
      accumulate: false,
      gradScale: 1,
      dropoutSeed,
      recompute: options.recompute,
    });
    const errors = await finiteDifferenceErrors(gpu(), terms, setup.grads, cpuLoss);
    // The DoRA norms follow A and B here: finite differences of the true loss.
    const movingNormsLoss = () => {
      followFactors(weights, terms, variant);
      return cpuLoss();
    };
    const trueErrors = options.dora
      ? await finiteDifferenceErrors(gpu(), terms, setup.grads, movingNormsLoss)
      : [];
    return { gpuLoss, cpuLoss: cpuLoss(), errors, trueErrors };
  } finally {
    setup.dispose();
  }
}

describe('adapter gradients', () => {
  it('match finite differences for every module type (GQA, untied head, masked targets)', async () => {
    const { gpuLoss, cpuLoss, errors } = await gradientCheck(tinyConfig());
    expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
    expect(errors.length).toBe(2 * 2 * 7);
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });

  it('match with q/k/v biases, a tied head and longer sequences', async () => {
    const config = tinyConfig({ attentionBias: true, tieWordEmbeddings: true, numKvHeads: 4 });
    const { errors } = await gradientCheck(config, { sequences: 3, seqLen: 7 });
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });

  it.each(FAMILY_NAMES)(
    '%s: match finite differences through every op of the family (windows, q/k norms, fused modules, GeGLU, LayerNorm, soft-capping…)',
    async (family) => {
      const config = familyConfig(family);
      const { gpuLoss, cpuLoss, errors } = await gradientCheck(config, { sequences: 2, seqLen: 6 });
      expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
      expect(errors.length).toBe(2 * 2 * config.arch.modules.length);
      for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
    },
  );

  it.each([false, true])(
    'match on a Q4_K_M GGUF base read from its blocks (DoRA: %s), against the f64 loss on its dequantized values',
    async (dora) => {
      const { config, weights } = loadGgufWeights(
        fixture('models/gguf/llama/model-Q4_K_M.gguf'),
        'model-Q4_K_M.gguf',
      );
      expect(weights.get('model.layers.0.mlp.up_proj.weight')?.quantized?.type).toBe('Q4_K');
      const { gpuLoss, cpuLoss, errors } = await gradientCheck(config, {
        weights,
        dora,
        sequences: 2,
        seqLen: 4,
      });
      expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
      for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
    },
    120_000,
  );

  it('match with dropout on the adapter inputs (the same masks forward and backward)', async () => {
    const { gpuLoss, cpuLoss, errors } = await gradientCheck(tinyConfig(), { dropout: 0.3 });
    expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });

  it('DoRA: match finite differences with the row norms held fixed (the detached gradient)', async () => {
    const config = tinyConfig({ attentionBias: true });
    const { gpuLoss, cpuLoss, errors, trueErrors } = await gradientCheck(config, {
      dora: true,
      dropout: 0.3,
    });
    expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
    expect(errors.length).toBe(2 * 3 * 7);
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
    // Letting the norms follow A and B changes their gradients (not m's): the check discriminates.
    const worst = (suffix: string) =>
      Math.max(...trueErrors.filter((e) => e.name.endsWith(suffix)).map((e) => e.error));
    expect(worst('lora_magnitude_vector')).toBeLessThan(1e-2);
    expect(worst('lora_A')).toBeGreaterThan(5e-2);
    expect(worst('lora_B')).toBeGreaterThan(5e-2);
  });

  it('are the same when activations are recomputed in the backward pass', async () => {
    const { errors } = await gradientCheck(tinyConfig(), { recompute: true });
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });
});
