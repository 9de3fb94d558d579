// What the data-aware inits learn from a few batches of the user's data before training starts
// (docs/design.md §4), by the kind of statistic an init's entry names
// (src/adapters/inits.ts): the uncentred covariance Σ xᵀx of each adapted module's inputs, its
// top components, and the mean full-weight gradient ∂L/∂W of each adapted module. All run the
// frozen base model; all accumulation happens on the GPU. Modules that read the same activation
// (q, k, v; gate, up) share one covariance.
import type { AdaptedModule } from '../adapters/config.ts';
import type { InitStatistics, StatisticKind, StatisticValues } from '../adapters/inits.ts';
import {
  covarianceTrace,
  EVA_RHO,
  topComponents,
  type Components,
} from '../adapters/inits/components.ts';
import type { Gpu } from '../gpu/device.ts';
import { Batch } from '../gpu/dispatch.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { matmul } from '../linalg/matmul.ts';
import { moduleSpec } from '../model/architecture.ts';
import { embed, layerForward, moduleInput, type Transformer } from '../model/transformer.ts';
import { batchLoss, type TokenBatch } from './step.ts';

/** Which activation a module reads: modules with the same key share a covariance. */
function inputKey(m: AdaptedModule): string {
  const shared: Partial<Record<string, string>> = {
    q_proj: 'h1',
    k_proj: 'h1',
    v_proj: 'h1',
    gate_proj: 'm',
    up_proj: 'm',
  };
  return `${m.layer}.${shared[m.module] ?? m.module}`;
}

/**
 * Σ xᵀx over the batches' tokens for each module's input (in × in), by module path; the caller
 * owns the tensors (shared ones appear under several paths: release each distinct tensor once,
 * e.g. with `releaseCovariances`). `afterBatch` may stop early (EVA's convergence test).
 */
export async function inputCovariances(
  gpu: Gpu,
  t: Transformer,
  batches: readonly TokenBatch[],
  modules: readonly AdaptedModule[],
  afterBatch?: (done: number, covariances: ReadonlyMap<string, Tensor>) => Promise<boolean>,
): Promise<Map<string, Tensor>> {
  const byKey = new Map<string, Tensor>();
  const byPath = new Map<string, Tensor>();
  for (const m of modules) {
    const key = inputKey(m);
    let c = byKey.get(key);
    if (!c) {
      c = createTensor(gpu, [m.in, m.in], 'f32', `${key} Σxᵀx`);
      byKey.set(key, c);
    }
    byPath.set(m.path, c);
  }
  try {
    for (const [i, data] of batches.entries()) {
      await accumulateInputs(gpu, t, data, modules, byPath, i > 0);
      if (afterBatch && (await afterBatch(i + 1, byPath))) break;
    }
    return byPath;
  } catch (e) {
    releaseTensor(gpu, ...byKey.values());
    throw e;
  }
}

export function releaseCovariances(gpu: Gpu, covariances: ReadonlyMap<string, Tensor>): void {
  releaseTensor(gpu, ...new Set(covariances.values()));
}

/** One batch's forward pass, adding xᵀx of each adapted module's input to its covariance. */
async function accumulateInputs(
  gpu: Gpu,
  t: Transformer,
  data: TokenBatch,
  modules: readonly AdaptedModule[],
  covariances: ReadonlyMap<string, Tensor>,
  accumulate: boolean,
): Promise<void> {
  const kept: Tensor[] = [];
  const keep = (x: Tensor) => {
    kept.push(x);
    return x;
  };
  const ids = keep(uploadTensor(gpu, data.ids, [data.ids.length], 'u32', 'ids'));
  const batch = new Batch(gpu);
  try {
    const at = { pos0: 0, seqLen: data.seqLen };
    let x = embed(batch, t, ids, keep, at);
    const done = new Set<Tensor>();
    for (let l = 0; l < t.config.numLayers; l++) {
      const saved = layerForward(batch, t, l, x, { at, keep });
      for (const m of modules.filter((mod) => mod.layer === l)) {
        const c = covariances.get(m.path)!;
        if (done.has(c)) continue;
        done.add(c);
        const input = moduleInput(saved, moduleSpec(t.config.arch, m.module));
        matmul(batch, input, input, { transA: true, beta: accumulate ? 1 : 0, into: c });
      }
      x = saved.out;
    }
    await batch.submit();
  } finally {
    releaseTensor(gpu, ...kept);
  }
}

/** Gradient memory per pass: modules are split into groups whose gradients fit in it. */
const GRADIENT_BUDGET_BYTES = 256 * 2 ** 20;

/**
 * The mean gradient of the loss per trained token with respect to each adapted module's full
 * weight (out × in), over the batches — LoRA-GA's statistic. When all of them do not fit the
 * budget at once, modules are taken in groups, each group a pass over the batches.
 */
export async function weightGradients(
  gpu: Gpu,
  t: Transformer,
  batches: readonly TokenBatch[],
  modules: readonly AdaptedModule[],
): Promise<Map<string, Tensor>> {
  const gradients = new Map<string, Tensor>();
  const tokens = batches.reduce((n, b) => n + b.targets.filter((v) => v >= 0).length, 0);
  try {
    for (const group of budgetGroups(modules)) {
      for (const m of group)
        gradients.set(m.path, createTensor(gpu, [m.out, m.in], 'f32', `${m.path} ∂L/∂W`));
      for (const [i, data] of batches.entries()) {
        const inGroup = new Set(group.map((m) => m.path));
        await batchLoss(gpu, t, data, {
          grads: new Map(),
          accumulate: false,
          gradScale: 1 / tokens,
          observe: (batch, path, g, x) => {
            const into = gradients.get(path);
            if (!into || !inGroup.has(path)) return;
            matmul(batch, g, x, { transA: true, beta: i > 0 ? 1 : 0, into });
          },
        });
      }
    }
    return gradients;
  } catch (e) {
    releaseTensor(gpu, ...gradients.values());
    throw e;
  }
}

function budgetGroups(modules: readonly AdaptedModule[]): AdaptedModule[][] {
  const groups: AdaptedModule[][] = [[]];
  let bytes = 0;
  for (const m of modules) {
    const size = 4 * m.out * m.in;
    if (bytes + size > GRADIENT_BUDGET_BYTES && groups.at(-1)!.length > 0) {
      groups.push([]);
      bytes = 0;
    }
    groups.at(-1)!.push(m);
    bytes += size;
  }
  return groups;
}

/** EVA stops collecting when every module's top components turn by less than this (cosine). */
export const EVA_TAU = 0.99;

/** |cos| between corresponding rows of two component sets (sign is arbitrary), the smallest. */
function leastAlignment(
  a: Omit<Components, 'trace'>,
  b: Omit<Components, 'trace'>,
  rows: number,
  n: number,
): number {
  let least = 1;
  for (let j = 0; j < rows; j++) {
    let dot = 0;
    for (let i = 0; i < n; i++) dot += a.vectors[j * n + i] * b.vectors[j * n + i];
    least = Math.min(least, Math.abs(dot));
  }
  return least;
}

/** One kind of statistic, collected for every module; `release` frees its GPU tensors. */
type Collector = (
  gpu: Gpu,
  t: Transformer,
  batches: readonly TokenBatch[],
  modules: readonly AdaptedModule[],
  seed: number,
) => Promise<{ statistics: InitStatistics; release: () => void }>;

const COLLECTORS: { [K in StatisticKind]: Collector } = {
  none: () => Promise.resolve({ statistics: new Map(), release: () => undefined }),
  'input-covariance': async (gpu, t, batches, modules) => {
    const covariances = await inputCovariances(gpu, t, batches, modules);
    return {
      statistics: covariances,
      release: () => {
        releaseCovariances(gpu, covariances);
      },
    };
  },
  'input-components': async (gpu, t, batches, modules, seed) => ({
    statistics: await inputComponents(gpu, t, batches, modules, seed),
    release: () => undefined,
  }),
  'weight-gradient': async (gpu, t, batches, modules) => {
    const gradients = await weightGradients(gpu, t, batches, modules);
    return {
      statistics: gradients,
      release: () => {
        releaseTensor(gpu, ...gradients.values());
      },
    };
  },
};

/**
 * The top ρ·r components of each module's input covariance (with its trace), collected until
 * they stabilise (cosine ≥ EVA_TAU between consecutive batches) or the batches run out.
 */
async function inputComponents(
  gpu: Gpu,
  t: Transformer,
  batches: readonly TokenBatch[],
  modules: readonly AdaptedModule[],
  seed: number,
): Promise<Map<string, StatisticValues['input-components']>> {
  let components = new Map<string, Omit<Components, 'trace'>>();
  const covariances = await inputCovariances(gpu, t, batches, modules, async (_, covs) => {
    const previous = components;
    components = new Map();
    let stable = previous.size > 0;
    for (const m of modules) {
      const c = await topComponents(gpu, covs.get(m.path)!, EVA_RHO * m.rank, seed);
      components.set(m.path, c);
      const before = previous.get(m.path);
      const rows = Math.min(m.rank, c.values.length);
      if (!before || leastAlignment(before, c, rows, m.in) < EVA_TAU) stable = false;
    }
    return stable;
  });
  const withTraces = new Map<string, Components>();
  for (const m of modules) {
    const trace = await covarianceTrace(gpu, covariances.get(m.path)!);
    withTraces.set(m.path, { ...components.get(m.path)!, trace });
  }
  releaseCovariances(gpu, covariances);
  return withTraces;
}

/** The statistic of `kind` over the batches, by module path; `release` frees its GPU tensors once the factors exist. */
export function initStatistics(
  gpu: Gpu,
  t: Transformer,
  batches: readonly TokenBatch[],
  modules: readonly AdaptedModule[],
  kind: StatisticKind,
  seed: number,
): Promise<{ statistics: InitStatistics; release: () => void }> {
  return COLLECTORS[kind](gpu, t, batches, modules, seed);
}
