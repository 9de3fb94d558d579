// The routed term's backward is the true gradient: the GPU's gradients of the learned scales, the
// routers (top-k included, with the load-balancing loss) and trained experts against central
// finite differences of the f64 reference loss, on the tiny model of every family.
import { describe, expect, it } from 'vitest';
import { readF32 } from '../gpu/readback.ts';
import { cpuBatchLoss, type CpuTerm } from '../model/cpu/reference.ts';
import { modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { createGpuModel } from '../model/forward.ts';
import type { ModelWeights } from '../model/weights.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { FAMILY_NAMES, familyConfig, randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import { batchLoss } from '../train/step.ts';
import { cpuBalance, expertOf, gateRow } from './cpu.ts';
import { blocksOf } from './kernels.ts';
import { routingMode, type RoutingMode } from './modes.ts';
import {
  RoutedAdapter,
  scaleGroup,
  trainedRouterState,
  type RouterModuleState,
  type RouterState,
} from './router.ts';

const gpu = useGpu();

/** A router over three random "adapters" of ranks 2, 0 (absent here) and 3 on every module. */
function adapterState(config: ModelConfig, mode: RoutingMode, topK: number, balance: number) {
  const random = seededRandom(17);
  const ranks = [2, 1, 3];
  const modules: RouterModuleState[] = [];
  for (let layer = 0; layer < config.numLayers; layer++)
    for (const spec of config.arch.modules) {
      // One expert is missing from every other module, as an adapter with fewer targets is.
      const here = ranks.map((r, e) => (e === 1 && spec.role !== 'q' ? 0 : r));
      const total = here.reduce((a, b) => a + b, 0);
      modules.push({
        path: modulePath(config.arch, layer, spec),
        layer,
        in: spec.in,
        out: spec.out,
        ranks: here,
        a: randomArray(random, total * spec.in, -0.4, 0.4),
        b: randomArray(random, spec.out * total, -0.4, 0.4),
        scale: 1,
        ...(routingMode(mode).gate === 'router'
          ? { router: randomArray(random, 3 * spec.in, -1, 1) }
          : {}),
      });
    }
  const scales = new Map<string, Float32Array>();
  if (mode === 'scales')
    for (let l = 0; l < config.numLayers; l++)
      scales.set(`layers.${l}`, randomArray(random, 3, 0.5, 1.5));
  return { mode, topK, balance, experts: ['x', 'y', 'z'], modules, scales } satisfies RouterState;
}

/** Trained experts with B made non-zero, so the gates' gradients are too. */
function trainedState(config: ModelConfig, mode: RoutingMode, balance: number): RouterState {
  const state = trainedRouterState(config, mode, {
    targets: ['all-linear'],
    experts: 3,
    rank: mode === 'mixlora' ? 2 : 5,
    alpha: 4,
    topK: 2,
    balance,
    seed: 3,
    nonZeros: 3,
  });
  const random = seededRandom(9);
  for (const m of state.modules) {
    m.b = randomArray(random, m.b.length, -0.5, 0.5);
    if (m.router) m.router = randomArray(random, m.router.length, -1, 1);
  }
  return state;
}

interface Checked {
  name: string;
  values: Float64Array;
}

/**
 * The reference terms of a state in f64, whose parameter arrays the check perturbs in place, and
 * each router's probabilities per token, in the order the reference computes them.
 */
function cpuTerms(state: RouterState) {
  const entry = routingMode(state.mode);
  const params = new Map<string, Checked>();
  const f64 = (name: string, data: Float32Array) => {
    const values = Float64Array.from(data);
    params.set(name, { name, values });
    return values;
  };
  const scales = new Map([...state.scales].map(([g, v]) => [g, f64(`${g}.scales`, v)]));
  const probs = new Map<string, number[][]>();
  const terms = new Map<string, CpuTerm>();
  for (const m of state.modules) {
    const owner = expertOf(blocksOf(m.ranks));
    const experts = m.ranks.length;
    const a = entry.trainsA ? f64(`${m.path}.experts.lora_A`, m.a) : Float64Array.from(m.a);
    const b =
      entry.experts === 'trained' ? f64(`${m.path}.experts.lora_B`, m.b) : Float64Array.from(m.b);
    const router = m.router && f64(`${m.path}.router.weight`, m.router);
    const rows: number[][] = [];
    probs.set(m.path, rows);
    const gate = (x: Float64Array, h: Float64Array) => {
      let g: ArrayLike<number>;
      if (entry.gate === 'scales') g = scales.get(scaleGroup(scales, m.layer))!;
      else if (entry.gate === 'magnitude') g = gateRow(h, 'magnitude', state.topK).gates;
      else {
        const scores = Array.from({ length: experts }, (_, e) =>
          x.reduce((s, v, i) => s + v * router![e * m.in + i], 0),
        );
        const row = gateRow(scores, 'softmax', state.topK);
        rows.push(Array.from(row.probs));
        g = row.gates;
      }
      return h.map((v, j) => v * g[owner[j]]);
    };
    terms.set(m.path, { a, b, rank: owner.length, scale: m.scale, gate });
  }
  return { terms, params, probs };
}

async function gradientCheck(config: ModelConfig, state: RouterState, weights: ModelWeights) {
  const random = seededRandom(5);
  const sequences = 2;
  const seqLen = 5;
  const n = sequences * seqLen;
  const ids = Uint32Array.from({ length: n }, () => Math.floor(random() * config.vocabSize));
  const targets = Int32Array.from({ length: n }, (_, i) =>
    i % 4 === 3 ? -1 : Math.floor(random() * config.vocabSize),
  );
  const model = createGpuModel(gpu(), config, weights);
  const routed = RoutedAdapter.create(gpu(), state, true);
  try {
    routed.zeroGradients();
    const view = routed.view(model.transformer);
    const gpuLoss = await batchLoss(
      gpu(),
      view,
      { ids, targets, seqLen },
      {
        grads: routed.grads,
        accumulate: false,
        gradScale: 1,
      },
    );
    const analytic = new Map<string, Float32Array>();
    for (const p of routed.parameters()) analytic.set(p.name, await readF32(gpu(), p.grad));

    const { terms, params, probs } = cpuTerms(state);
    const routers = state.modules.filter((m) => m.router).length;
    const cpuLoss = () => {
      for (const rows of probs.values()) rows.length = 0;
      return cpuBatchLoss({ config, weights, terms, ids, targets, seqLen });
    };
    const base = cpuLoss();
    // The balance loss with each module's loads f held at their values here (as the backward does).
    const loads = new Map(
      [...probs].map(([path, rows]) => [
        path,
        cpuBalance(rows.flat(), rows[0]?.length ?? 1, state.topK, 1).load,
      ]),
    );
    const total = () => {
      let value = cpuLoss();
      for (const [path, rows] of probs) {
        if (rows.length === 0) continue;
        const experts = rows[0].length;
        const load = loads.get(path)!;
        for (let e = 0; e < experts; e++) {
          const mean = rows.reduce((s, r) => s + r[e], 0) / rows.length;
          value += (state.balance / routers) * experts * load[e] * mean;
        }
      }
      return value;
    };
    expect([...params.keys()].sort()).toEqual([...analytic.keys()].sort());
    const errors: { name: string; error: number }[] = [];
    for (const { name, values } of params.values()) {
      const grad = analytic.get(name)!;
      let diff = 0;
      let norm = 0;
      for (let k = 0; k < 5; k++) {
        const i = Math.floor(random() * values.length);
        const saved = values[i];
        const eps = 1e-5;
        values[i] = saved + eps;
        const plus = total();
        values[i] = saved - eps;
        const minus = total();
        values[i] = saved;
        const numeric = (plus - minus) / (2 * eps);
        diff += (grad[i] - numeric) ** 2;
        norm += numeric ** 2;
      }
      errors.push({ name, error: norm > 1e-12 ? Math.sqrt(diff / norm) : Math.sqrt(diff) });
    }
    return { gpuLoss, cpuLoss: base, errors };
  } finally {
    routed.dispose();
    model.dispose();
  }
}

describe('routing gradients', () => {
  it.each<[RoutingMode, number, number]>([
    ['scales', 0, 0],
    ['token', 0, 0],
    ['token', 2, 0],
    ['token', 2, 0.5],
    ['token', 1, 0.5],
    ['token', 0, 0.5],
  ])('%s (top-%i, balance %f): match finite differences', async (mode, topK, balance) => {
    const config = tinyConfig();
    const state = adapterState(config, mode, topK, balance);
    const { gpuLoss, cpuLoss, errors } = await gradientCheck(
      config,
      state,
      randomWeights(config, 7),
    );
    expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
    expect(errors.length).toBeGreaterThan(0);
    for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
  });

  it.each<RoutingMode>(['mixlora', 'smora', 'flylora'])(
    '%s: experts and routers match finite differences',
    async (mode) => {
      const config = tinyConfig();
      const state = trainedState(config, mode, 0.3);
      const { gpuLoss, cpuLoss, errors } = await gradientCheck(
        config,
        state,
        randomWeights(config, 7),
      );
      expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
      const names = errors.map((e) => e.name);
      expect(names.some((n) => n.endsWith('lora_B'))).toBe(true);
      expect(names.some((n) => n.endsWith('lora_A'))).toBe(routingMode(mode).trainsA);
      expect(names.some((n) => n.endsWith('router.weight'))).toBe(mode !== 'flylora');
      for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
    },
  );

  it.each(FAMILY_NAMES)(
    '%s: token routing (top-2) matches through every op of the family',
    async (family) => {
      const config = familyConfig(family);
      const state = adapterState(config, 'token', 2, 0.2);
      const { gpuLoss, cpuLoss, errors } = await gradientCheck(
        config,
        state,
        randomWeights(config, 7),
      );
      expect(Math.abs(gpuLoss - cpuLoss) / cpuLoss).toBeLessThan(1e-5);
      for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
    },
  );
});
