// A routed composition: per adapted module, the experts' factors stacked into one term
// A [R × in], B [out × R] (expert e owning its block of rank components) and a gate of the mode's
// kind between them, y = W·x + s·B·(G(x) ⊙ A·x) — one pair of products for every expert instead
// of E (shaders/routing.wgsl). The state lives on the host as RouterState (what a router folder
// holds, files.ts) and on the GPU as a RoutedAdapter, which gives the model view that generation,
// evaluation and training run, and the parameters the optimiser updates.
import type { Gpu } from '../gpu/device.ts';
import type { Batch } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { gaussian, seededRandom } from '../linalg/random.ts';
import { PLAIN_TERM } from '../adapters/variants/lora.ts';
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { misfit, shapeMismatches } from '../adapters/peft-read.ts';
import { modulePath, resolveTargets } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import type { FactorGradients } from '../train/backward.ts';
import type { Parameter } from '../train/optimizer.ts';
import { magnitudeGate, routerGate, scaleGate, type GateLayout } from './gates.ts';
import { blocksOf, uploadBlocks } from './kernels.ts';
import { routingMode, type RoutingMode } from './modes.ts';

/** One routed module on the host. */
export interface RouterModuleState {
  path: string;
  layer: number;
  in: number;
  out: number;
  /** Each expert's rank here, in expert order (0: that expert does not adapt this module). */
  ranks: number[];
  /** The stacked factors: A [R × in], B [out × R], and the scaling s of B·A. */
  a: Float32Array;
  b: Float32Array;
  scale: number;
  /** A router gate's W_r [E × in]. */
  router?: Float32Array;
}

export interface RouterState {
  mode: RoutingMode;
  /** Experts per token (0: all, softly). */
  topK: number;
  /** The load-balancing loss's weight α. */
  balance: number;
  /** The experts' names, in order: the adapters', or `expert N` for trained ones. */
  experts: string[];
  modules: RouterModuleState[];
  /** Learned scales [E]: one set for the whole model (`all`) or one per layer (`layers.N`). */
  scales: Map<string, Float32Array>;
}

/** The learned scales a module's gate reads. */
export function scaleGroup(scales: ReadonlyMap<string, unknown>, layer: number): string {
  return scales.has('all') ? 'all' : `layers.${layer}`;
}

/** A router's W_r at the start: small random values, so top-k choices differ from the first step. */
function startRouter(experts: number, width: number, seed: number): Float32Array {
  const g = gaussian(experts * width, seed);
  const std = 0.01 / Math.sqrt(width);
  return g.map((v) => v * std);
}

/**
 * Routing over adapters read from files: each module's experts are the adapters adapting it, A
 * stacked, B stacked with each adapter's scaling folded in (s = 1). Refuses what cannot be
 * stacked as plain low-rank terms, naming it.
 */
export function adapterRouterState(
  config: ModelConfig,
  adapters: readonly { adapter: PeftAdapter; weight: number }[],
  mode: RoutingMode,
  options: { topK?: number; balance?: number; perLayer?: boolean; seed?: number } = {},
): RouterState {
  const entry = routingMode(mode);
  if (entry.experts !== 'adapters')
    throw new RangeError(`--mode ${mode} trains its own experts; it takes no adapters`);
  if (adapters.length < 1) throw new RangeError(`--mode ${mode} needs at least one adapter`);
  for (const { adapter } of adapters) {
    const refusal =
      adapter.details.variant !== 'lora'
        ? `is ${adapter.details.variant}, whose ΔW is not a low-rank product to stack`
        : [...adapter.modules.values()].some((m) => m.embedding)
          ? 'has an embedding LoRA; routing gates linear modules only'
          : adapter.fullWeights.size > 0
            ? 'replaces whole weights (modules_to_save), which cannot be gated'
            : null;
    if (refusal) throw new FormatError(adapter.name, refusal);
    const problems = shapeMismatches(adapter, config);
    if (problems.length > 0) throw new FormatError(adapter.name, misfit(problems));
  }
  const experts = adapters.length;
  const { arch } = config;
  const modules: RouterModuleState[] = [];
  for (let layer = 0; layer < config.numLayers; layer++)
    for (const [i, spec] of arch.modules.entries()) {
      const path = modulePath(arch, layer, spec);
      const parts = adapters.map(({ adapter }) => adapter.modules.get(path));
      if (parts.every((m) => !m)) continue;
      const ranks = parts.map((m) => m?.rank ?? 0);
      const total = ranks.reduce((a, b) => a + b, 0);
      const a = new Float32Array(total * spec.in);
      const b = new Float32Array(spec.out * total);
      let col = 0;
      parts.forEach((m) => {
        if (!m) return;
        a.set(m.a, col * spec.in);
        for (let o = 0; o < spec.out; o++)
          for (let j = 0; j < m.rank; j++) b[o * total + col + j] = m.scale * m.b[o * m.rank + j];
        col += m.rank;
      });
      const seed = (options.seed ?? 0) * 7919 + layer * arch.modules.length + i;
      modules.push({
        path,
        layer,
        in: spec.in,
        out: spec.out,
        ranks,
        a,
        b,
        scale: 1,
        ...(entry.gate === 'router' ? { router: startRouter(experts, spec.in, seed) } : {}),
      });
    }
  const scales = new Map<string, Float32Array>();
  if (entry.gate === 'scales') {
    const start = Float32Array.from(adapters, (x) => x.weight);
    const groups = options.perLayer
      ? [...new Set(modules.map((m) => m.layer))].map((l) => `layers.${l}`)
      : ['all'];
    for (const g of groups) scales.set(g, start.slice());
  }
  return {
    mode,
    topK: options.topK ?? entry.defaultTopK(experts),
    balance: options.balance ?? 0,
    experts: adapters.map(({ adapter }) => adapter.name),
    modules,
    scales,
  };
}

/** What a mode that trains its own experts is given. */
export interface TrainedExperts {
  /** Module names or keywords (`all-linear`, `attention`), as --targets. */
  targets: readonly string[];
  /** Experts per module (MixLoRA), or per layer from the bottom up (MoLA: --layer-experts). */
  experts: number | readonly number[];
  /** Each expert's rank (MixLoRA), or the one adapter's rank whose components are experts. */
  rank: number;
  alpha: number;
  topK?: number;
  balance?: number;
  seed: number;
  /** FlyLoRA: non-zero entries per row of the frozen A (default: a quarter of the input width). */
  nonZeros?: number;
}

/**
 * Fresh experts: A drawn as PEFT draws LoRA's (U(±1/√in)), or FlyLoRA's sparse random rows
 * (p non-zeros from N(0, 1/r²)); B = 0, so the routed model starts as the base; routers small and
 * random.
 */
export function trainedRouterState(
  config: ModelConfig,
  mode: RoutingMode,
  o: TrainedExperts,
): RouterState {
  const entry = routingMode(mode);
  if (entry.experts !== 'trained')
    throw new RangeError(`--mode ${mode} routes between adapters: give them with --adapters`);
  if (!(Number.isInteger(o.rank) && o.rank >= 1))
    throw new RangeError('--rank must be an integer ≥ 1');
  const { arch } = config;
  const targeted = resolveTargets(arch, o.targets);
  if (targeted.length === 0)
    throw new RangeError(
      `no module ${o.targets.join(', ')} in this ${arch.family} model (use attention, all-linear or ${arch.modules.map((m) => m.name).join(', ')})`,
    );
  const expertsAt = (layer: number): number => {
    if (entry.rankOneExperts) return o.rank;
    if (typeof o.experts === 'number') return o.experts;
    // MoLA: the counts cover the depth in equal bands, bottom first.
    const band = Math.min(
      o.experts.length - 1,
      Math.floor((layer * o.experts.length) / config.numLayers),
    );
    return o.experts[band];
  };
  const counts = Array.from({ length: config.numLayers }, (_, l) => expertsAt(l));
  if (counts.some((n) => !(Number.isInteger(n) && n >= 1)))
    throw new RangeError('expert counts must be integers ≥ 1');
  const modules: RouterModuleState[] = [];
  const random = seededRandom(o.seed);
  for (let layer = 0; layer < config.numLayers; layer++)
    for (const [i, spec] of arch.modules.entries()) {
      if (!targeted.includes(spec.name)) continue;
      const experts = counts[layer];
      const ranks = new Array<number>(experts).fill(entry.rankOneExperts ? 1 : o.rank);
      const total = ranks.reduce((a, b) => a + b, 0);
      if (total > Math.min(spec.in, spec.out))
        throw new RangeError(
          `${experts} experts of rank ${ranks[0]} exceed ${modulePath(arch, layer, spec)}'s smaller side (${spec.out}×${spec.in})`,
        );
      const a = new Float32Array(total * spec.in);
      if (entry.trainsA) {
        const bound = 1 / Math.sqrt(spec.in);
        for (let k = 0; k < a.length; k++) a[k] = (2 * random() - 1) * bound;
      } else {
        const p = Math.max(1, Math.min(spec.in, o.nonZeros ?? Math.ceil(spec.in / 4)));
        const values = gaussian(total * p, o.seed * 31 + layer * arch.modules.length + i);
        for (let j = 0; j < total; j++) {
          const columns = choose(spec.in, p, random);
          columns.forEach((c, k) => (a[j * spec.in + c] = values[j * p + k] / total));
        }
      }
      modules.push({
        path: modulePath(arch, layer, spec),
        layer,
        in: spec.in,
        out: spec.out,
        ranks,
        a,
        b: new Float32Array(spec.out * total),
        scale: o.alpha / total,
        ...(entry.gate === 'router'
          ? {
              router: startRouter(
                experts,
                spec.in,
                o.seed * 7919 + layer * arch.modules.length + i,
              ),
            }
          : {}),
      });
    }
  const widest = Math.max(...counts);
  return {
    mode,
    topK: o.topK ?? entry.defaultTopK(widest),
    balance: o.balance ?? 0,
    experts: Array.from({ length: widest }, (_, e) => `expert ${e}`),
    modules,
    scales: new Map(),
  };
}

/** p distinct indices below n, drawn without replacement (partial Fisher–Yates). */
function choose(n: number, p: number, random: () => number): number[] {
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < p; i++) {
    const j = i + Math.floor(random() * (n - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, p);
}

interface GpuModule {
  state: RouterModuleState;
  layout: GateLayout;
  a: Tensor;
  b: Tensor;
  router?: Tensor;
  grads: FactorGradients & { router?: Tensor };
}

/** Sees each gated module's gates [T × E] as a forward records them. */
export type GateObserver = (batch: Batch, module: RouterModuleState, gates: Tensor) => void;

export class RoutedAdapter {
  private observer?: GateObserver;

  private constructor(
    private readonly gpu: Gpu,
    private readonly meta: Omit<RouterState, 'modules' | 'scales'>,
    private readonly modules: GpuModule[],
    private readonly scales: Map<string, { value: Tensor; grad?: Tensor }>,
  ) {}

  /** Uploads a state; with `trainable`, gradient buffers for what the mode trains. */
  static create(gpu: Gpu, state: RouterState, trainable: boolean): RoutedAdapter {
    const entry = routingMode(state.mode);
    const tensors: Tensor[] = [];
    const up = (data: Float32Array, shape: number[], label: string) => {
      const t = uploadTensor(gpu, data, shape, 'f32', label);
      tensors.push(t);
      return t;
    };
    const zeros = (shape: number[], label: string) =>
      up(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, label);
    try {
      const scales = new Map<string, { value: Tensor; grad?: Tensor }>();
      for (const [group, values] of state.scales)
        scales.set(group, {
          value: up(values, [1, values.length], `${group} scales`),
          grad: trainable ? zeros([1, values.length], `${group} d scales`) : undefined,
        });
      const ownExperts = trainable && entry.experts === 'trained';
      const modules = state.modules.map((m): GpuModule => {
        const blocks = blocksOf(m.ranks);
        const rank = m.a.length / m.in;
        const layout = uploadBlocks(gpu, blocks, m.path);
        tensors.push(layout);
        const experts = m.ranks.length;
        return {
          state: m,
          layout: { blocks, layout },
          a: up(m.a, [rank, m.in], `${m.path} stacked A`),
          b: up(m.b, [m.out, rank], `${m.path} stacked B`),
          router: m.router && up(m.router, [experts, m.in], `${m.path} router`),
          grads: {
            a: ownExperts && entry.trainsA ? zeros([rank, m.in], `${m.path} dA`) : undefined,
            b: ownExperts ? zeros([m.out, rank], `${m.path} dB`) : undefined,
            router:
              trainable && m.router ? zeros([experts, m.in], `${m.path} d router`) : undefined,
          },
        };
      });
      const meta = {
        mode: state.mode,
        topK: state.topK,
        balance: state.balance,
        experts: state.experts,
      };
      return new RoutedAdapter(gpu, meta, modules, scales);
    } catch (e) {
      releaseTensor(gpu, ...tensors);
      throw e;
    }
  }

  get mode(): RoutingMode {
    return this.meta.mode;
  }

  get experts(): readonly string[] {
    return this.meta.experts;
  }

  get topK(): number {
    return this.meta.topK;
  }

  /** Sees the gates of every module in the forwards recorded from now on (none: stop). */
  observe(observer?: GateObserver): void {
    this.observer = observer;
  }

  /** Each module's gradient buffers, as the backward pass reads them. */
  get grads(): ReadonlyMap<string, FactorGradients> {
    return new Map(this.modules.map((m) => [m.state.path, m.grads]));
  }

  /** Every routed module's stacked term with its gate, by module path. */
  terms(): Map<string, AdapterTerm[]> {
    const entry = routingMode(this.mode);
    const routed = this.modules.filter((m) => m.router).length;
    const terms = new Map<string, AdapterTerm[]>();
    for (const m of this.modules) {
      const layout: GateLayout = {
        ...m.layout,
        observe: (batch, gates) => this.observer?.(batch, m.state, gates),
      };
      const scales = this.scales.get(scaleGroup(this.scales, m.state.layer));
      const gate =
        entry.gate === 'scales' && scales
          ? scaleGate(layout, scales.value, scales.grad)
          : entry.gate === 'router' && m.router
            ? routerGate(layout, m.router, {
                topK: this.meta.topK,
                // The loss is a mean over the routed modules, beside the mean token loss.
                balance: this.meta.balance / routed,
                grad: m.grads.router,
              })
            : magnitudeGate(layout, this.meta.topK);
      terms.set(m.state.path, [
        { a: m.a, b: m.b, scale: m.state.scale, variant: PLAIN_TERM, gate },
      ]);
    }
    return terms;
  }

  /** The base model with every routed module's stacked term and gate. */
  view(base: Transformer): Transformer {
    const terms = this.terms();
    return {
      config: base.config,
      ropeTables: base.ropeTables,
      weight: (name) => base.weight(name),
      adapterTerms: (path) => terms.get(path) ?? [],
    };
  }

  /** What trains, as optimiser parameters named as the router folder names them. */
  parameters(): Parameter[] {
    const params: Parameter[] = [];
    for (const [group, s] of this.scales)
      if (s.grad) params.push({ name: `${group}.scales`, value: s.value, grad: s.grad });
    for (const m of this.modules) {
      const { path } = m.state;
      if (m.grads.a) params.push({ name: `${path}.experts.lora_A`, value: m.a, grad: m.grads.a });
      if (m.grads.b) params.push({ name: `${path}.experts.lora_B`, value: m.b, grad: m.grads.b });
      if (m.router && m.grads.router)
        params.push({ name: `${path}.router.weight`, value: m.router, grad: m.grads.router });
    }
    return params;
  }

  /** Zeroes every gradient buffer: the gates add to theirs. */
  zeroGradients(): void {
    for (const p of this.parameters())
      this.gpu.device.queue.writeBuffer(p.grad.buffer, 0, new Float32Array(p.grad.numel));
  }

  /** The state as it is now on the GPU. */
  async read(): Promise<RouterState> {
    const modules: RouterModuleState[] = [];
    for (const m of this.modules)
      modules.push({
        ...m.state,
        a: m.grads.a ? await readF32(this.gpu, m.a) : m.state.a,
        b: m.grads.b ? await readF32(this.gpu, m.b) : m.state.b,
        ...(m.router ? { router: await readF32(this.gpu, m.router) } : {}),
      });
    const scales = new Map<string, Float32Array>();
    for (const [group, s] of this.scales) scales.set(group, await readF32(this.gpu, s.value));
    return { ...this.meta, modules, scales };
  }

  dispose(): void {
    const tensors: Tensor[] = [];
    for (const s of this.scales.values()) tensors.push(s.value, ...(s.grad ? [s.grad] : []));
    for (const m of this.modules)
      tensors.push(
        m.a,
        m.b,
        m.layout.layout,
        ...[m.router, m.grads.a, m.grads.b, m.grads.router].flatMap((t) => t ?? []),
      );
    releaseTensor(this.gpu, ...tensors);
    this.modules.length = 0;
    this.scales.clear();
  }
}
