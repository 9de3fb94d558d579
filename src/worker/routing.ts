// The routing part of the Studio API: a router between library adapters trained on their eval
// texts (src/routing/), which then stays applied to the loaded model — the playground generates
// through it and hears which adapter each token's gates chose — until the composition changes or
// the user ends it.
import type { Gpu } from '../gpu/device.ts';
import { createTensor, releaseTensor, type Tensor } from '../gpu/tensor.ts';
import { readF32 } from '../gpu/readback.ts';
import { axpy } from '../linalg/elementwise.ts';
import type { Runner } from '../model/forward.ts';
import { routingMode } from '../routing/modes.ts';
import { adapterRouterState, RoutedAdapter } from '../routing/router.ts';
import { routingUsage, trainRouter, validationLoss } from '../routing/train.ts';
import { prepareDataset, type Sequence } from '../train/data.ts';
import { zipSync } from 'fflate';
import { fileSafeName } from '../adapters/model-card.ts';
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { sha256Hex } from '../hash.ts';
import { routerFiles } from '../routing/files.ts';
import { bakeAndMeasure } from '../routing/bake.ts';
import { describeEntry, type AdapterLibrary, type LibraryEntry } from '../adapters/library.ts';
import { newId } from './adapters.ts';
import type { RouteOutcome, RouteRequest, StudioApi } from './api.ts';
import type { LoadedModel } from './loaded.ts';

export interface RoutingDeps {
  loaded(): LoadedModel | undefined;
  parsedAdapter(id: string): Promise<PeftAdapter>;
  /** A library adapter's files, for the router's download. */
  adapterFiles(id: string): Promise<Record<string, Uint8Array>>;
  /** Where a baked router goes. */
  library: AdapterLibrary;
}

type RoutingApi = Pick<StudioApi, 'trainRouter' | 'stopRouter' | 'routerZip' | 'bakeRouter'>;

/** The router applied to the loaded model, its experts' names and library ids. */
export interface ActiveRouter {
  routed: RoutedAdapter;
  experts: string[];
  ids: string[];
  /** The model it was trained on, as router.json names it. */
  baseModel: string;
  /** The eval texts' sequences it learned from and was measured on (its gates' mean is over all). */
  trained: Sequence[];
  held: Sequence[];
}

/** Sequences per eval text for the router's data and its measurements: windows of 128 tokens. */
const WINDOW = 128;
/** The share of each eval text kept out of training, to measure on. */
const HELD_OUT = 0.25;

export function createRoutingApi(deps: RoutingDeps): RoutingApi & {
  /** The router generation runs through, if any. */
  active(): ActiveRouter | null;
  /** Ends routing (the composition changed, or the model is going): the router is released. */
  end(): void;
} {
  let active: ActiveRouter | null = null;
  let stopRequested = false;
  // Read through a function: the flag changes while a run awaits.
  const stopped = () => stopRequested;

  function end() {
    active?.routed.dispose();
    active = null;
  }

  return {
    active: () => active,
    end,

    async trainRouter(request: RouteRequest, onProgress) {
      const loaded = deps.loaded();
      if (!loaded) throw new Error('Load a model first: the router routes between its adapters.');
      if (loaded.model.where !== 'gpu')
        throw new Error('Routing trains on the GPU: it needs WebGPU.');
      const entry = routingMode(request.mode);
      if (entry.experts !== 'adapters')
        throw new Error(
          `${entry.label} trains its own experts: the studio routes between adapters.`,
        );
      if (request.adapters.length < 2)
        throw new Error('Put at least two adapters on the board to route between.');
      const { gpu, model } = loaded.model;
      const adapters = await Promise.all(request.adapters.map((id) => deps.parsedAdapter(id)));
      const seqLen = Math.min(WINDOW, model.config.maxPositions);
      // Each adapter's eval text: most of it trains the router, the rest measures it.
      const texts = request.adapters.map((id, i) => {
        const text = request.texts.find((t) => t.id === id)?.text.trim() ?? '';
        if (text === '')
          throw new Error(
            `Paste an eval text for ${adapters[i].name}: the router learns from the board's texts.`,
          );
        const data = prepareDataset(text, `${adapters[i].name}.txt`, loaded.tokenizer, {
          seqLen,
          validationFraction: HELD_OUT,
          seed: 0,
        });
        return {
          id,
          name: adapters[i].name,
          train: data.train,
          held: data.validation.length > 0 ? data.validation : data.train,
        };
      });
      const state = adapterRouterState(
        model.config,
        adapters.map((adapter) => ({
          adapter,
          weight: request.mode === 'scales' ? 1 / adapters.length : 1,
        })),
        request.mode,
        { topK: request.topK, balance: request.mode === 'token' ? 0.01 : 0 },
      );
      end();
      stopRequested = false;
      const routed = RoutedAdapter.create(gpu, state, true);
      try {
        const train: Sequence[] = texts.flatMap((t) => t.train);
        const validation: Sequence[] = texts.flatMap((t) => t.held);
        const { history, failure } = await trainRouter(
          gpu,
          model.base,
          routed,
          { train, validation },
          {
            steps: request.steps,
            lr: request.lr,
            batchSize: 4,
            seed: 0,
            evalEvery: Math.max(1, Math.round(request.steps / 5)),
            maxGradNorm: 1,
            weightDecay: 0,
            warmupSteps: 0,
          },
          (point) => {
            onProgress?.(point, request.steps);
            return !stopped();
          },
        );
        if (failure) throw new Error(failure);
        if (stopped()) throw new Error('Cancelled.');
        const view = routed.view(model.base);
        const rows: RouteOutcome['rows'] = [];
        for (const [i, t] of texts.entries()) {
          const base = await validationLoss(gpu, model.base, t.held, 4);
          const routedLoss = await validationLoss(gpu, view, t.held, 4);
          const ownShare =
            request.mode === 'token'
              ? (await routingUsage(gpu, model.base, routed, t.held)).shares[i]
              : null;
          rows.push({ id: t.id, name: t.name, base, routed: routedLoss, ownShare });
        }
        const layerUsage =
          request.mode === 'token'
            ? (await routingUsage(gpu, model.base, routed, validation)).perLayer
            : null;
        const trained = await routed.read();
        // Applied from now on: generation goes through the router.
        model.setAdapters(routed.terms());
        active = {
          routed,
          experts: texts.map((t) => t.name),
          ids: texts.map((t) => t.id),
          baseModel: adapters[0].baseModel ?? loaded.hubId ?? loaded.name,
          trained: train,
          held: validation,
        };
        return {
          experts: texts.map(({ id, name }) => ({ id, name })),
          rows,
          scales: trained.scales.get('all') ? Array.from(trained.scales.get('all')!) : null,
          layerUsage,
          history,
        };
      } catch (e) {
        if (active?.routed !== routed) routed.dispose();
        throw e;
      }
    },

    stopRouter() {
      stopRequested = true;
      return Promise.resolve();
    },

    async bakeRouter(name) {
      const loaded = deps.loaded();
      if (!active || !loaded || loaded.model.where !== 'gpu')
        throw new Error('No router is applied: train one first.');
      const { gpu, model } = loaded.model;
      const { routed, held, trained } = active;
      const { files, adapter, routedLoss, bakedLoss } = await bakeAndMeasure(
        gpu,
        model.base,
        routed,
        [...trained, ...held],
        held,
        active.baseModel,
      );
      const entry: LibraryEntry = {
        id: newId('routed'),
        name,
        baseModel: active.baseModel,
        createdAt: Date.now(),
        origin: `baked router (${routed.mode}) of ${active.experts.join(', ')}`,
        files: Object.fromEntries(files),
        details: adapter.details,
      };
      await deps.library.add(entry);
      return { item: describeEntry(entry), routedLoss, bakedLoss };
    },

    async routerZip() {
      if (!active) throw new Error('No router is applied: train one first.');
      const state = await active.routed.read();
      const experts = [];
      const files: Record<string, Uint8Array> = {};
      for (const [i, id] of active.ids.entries()) {
        const name = active.experts[i];
        const path = `experts/${fileSafeName(name)}`;
        const own = await deps.adapterFiles(id);
        for (const [file, bytes] of Object.entries(own)) files[`${path}/${file}`] = bytes;
        // A record's keys are not known to exist: an adapter may lack a file.
        const tensors = own['adapter_model.safetensors'] as Uint8Array | undefined;
        experts.push({ name, path, ...(tensors ? { sha256: await sha256Hex(tensors) } : {}) });
      }
      const folder = fileSafeName(`router ${active.experts.join(' + ')}`);
      for (const [file, bytes] of routerFiles(state, { baseModel: active.baseModel, experts }))
        files[file] = bytes;
      const zip = zipSync(
        Object.fromEntries(
          Object.entries(files).map(([file, bytes]) => [`${folder}/${file}`, bytes]),
        ),
        { level: 6 },
      );
      return { name: `${folder}.zip`, bytes: zip };
    },
  };
}

/** Which expert a token's gates chose: averaged over every routed module, and per layer. */
export interface TokenChoice {
  expert: number;
  /** Per layer (−1 where the layer routes nothing). */
  layers: number[];
}

/** The index of the largest of n values from `offset` of a row-major array. */
function argmax(values: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let e = 1; e < n; e++) if (values[offset + e] > values[offset + best]) best = e;
  return best;
}

/**
 * A runner that, while generating through a router, hears after every forward which expert the
 * gates chose for its last position: the one with the highest gate averaged over the modules
 * that route between all the experts, and the same per layer.
 */
export function choosingRunner(
  gpu: Gpu,
  model: Runner,
  router: ActiveRouter,
  onChoice: (choice: TokenChoice) => void,
): Runner {
  const experts = router.experts.length;
  const layers = model.config.numLayers;
  // Per layer, Σ over its modules of the gates [T × E] of the forward being recorded.
  let sums: (Tensor | undefined)[] = [];
  const release = () => {
    releaseTensor(gpu, ...sums.flatMap((t) => t ?? []));
    sums = [];
  };
  router.routed.observe((batch, module, gates) => {
    if (gates.shape[1] !== experts) return;
    let sum = sums[module.layer];
    if (!sum) {
      sum = createTensor(gpu, gates.shape, 'f32', `layer ${module.layer} gate sum`);
      gpu.device.queue.writeBuffer(sum.buffer, 0, new Float32Array(sum.numel));
      sums[module.layer] = sum;
    }
    axpy(batch, 1, gates, sum);
  });
  const choose = async () => {
    if (sums.length === 0) return;
    try {
      const total = new Float64Array(experts);
      const perLayer: number[] = [];
      for (let l = 0; l < layers; l++) {
        const sum = sums[l];
        if (!sum) {
          perLayer.push(-1);
          continue;
        }
        const values = await readF32(gpu, sum);
        const last = values.length - experts;
        for (let e = 0; e < experts; e++) total[e] += values[last + e];
        perLayer.push(argmax(values, last, experts));
      }
      onChoice({ expert: argmax(total, 0, experts), layers: perLayer });
    } finally {
      release();
    }
  };
  return {
    config: model.config,
    async forward(tokens, pos0) {
      const logits = await model.forward(tokens, pos0);
      await choose();
      return logits;
    },
    async forwardAll(tokens, pos0) {
      const logits = await model.forwardAll(tokens, pos0);
      await choose();
      return logits;
    },
    dispose() {
      router.routed.observe(undefined);
      release();
    },
  };
}
