// The adapter being trained, on the GPU: factors (those the init trains, with their gradients),
// the core between them where there is one (DyLoRA, SVFit, LoRA-SB, SORSA), the residual weights of
// base-mutating inits, its variant's vectors and state (DoRA's magnitudes and row norms), and the
// transformer view that trains against them (the base model's weights stay untouched, so the
// original is there for export and for other adapters).
import type { AdaptedModule, HostFactors, InitMethod, LoraSpec } from '../adapters/config.ts';
import { adaptedModules } from '../adapters/config.ts';
import { initFactors } from '../adapters/init.ts';
import { initEntry, mutatesBase, type InitStatistics, type Trained } from '../adapters/inits.ts';
import {
  CORE_KEY,
  exportAdapter,
  GAIN_KEY,
  peftFiles,
  type TrainedFactors,
} from '../adapters/peft.ts';
import { recompress } from '../adapters/recompress.ts';
import { variantEngine, type TrainedVariant } from '../adapters/variants/engine.ts';
import { variantEntry, type VariantEntry, type VectorField } from '../adapters/variants.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Gpu } from '../gpu/device.ts';
import { run, type Batch } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, isQuantized, releaseTensor, type Tensor } from '../gpu/tensor.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import type { FactorGradients } from './backward.ts';
import { FactorCores, identity } from './core.ts';
import { drawnRanks, truncation } from './dylora.ts';
import { addOrthonormalGradients } from './orthonormal.ts';
import type { Parameter } from './optimizer.ts';

/** One module's factors with their gradients, as LoRA-Pro's gradient correction needs them. */
export interface FactorsWithGradients {
  path: string;
  scale: number;
  a: Tensor;
  b: Tensor;
  grads: { a: Tensor; b: Tensor };
}

export class TrainableAdapter {
  /** The spec's entry of the variant table: which vectors train beside A and B. */
  private readonly variant: VariantEntry;
  /** Each module's variant state (DoRA's magnitudes and row norms), by path. */
  private readonly variants = new Map<string, TrainedVariant>();

  private constructor(
    private readonly gpu: Gpu,
    readonly spec: LoraSpec,
    readonly modules: readonly AdaptedModule[],
    private readonly factors: Map<string, { a: Tensor; b: Tensor }>,
    readonly grads: Map<string, FactorGradients>,
    private readonly residuals: Map<string, Tensor>,
    /** A₀ and B₀ of base-mutating inits: export converts against them. */
    readonly initial: Map<string, HostFactors>,
    /**
     * The core C between B and A (src/train/core.ts): DyLoRA's per-step truncation, or the
     * trained core of an init that trains one (SVFit's and SORSA's diagonal, LoRA-SB's whole
     * matrix).
     */
    private cores?: FactorCores,
  ) {
    this.variant = variantEntry(spec.variant);
  }

  /** Initialises every adapted module (`onModule` hears progress: SVDs can take a while). */
  static async create(
    gpu: Gpu,
    base: Transformer,
    spec: LoraSpec,
    seed: number,
    onModule?: (done: number, total: number, path: string) => void,
    statistics: InitStatistics = new Map(),
  ): Promise<TrainableAdapter> {
    const planned = adaptedModules(base.config, spec);
    const entry = initEntry(spec.init);
    const unread = entry.statistic === 'none' ? [] : planned.filter((m) => !statistics.has(m.path));
    if (unread.length > 0)
      throw new Error(`${spec.init} needs statistics of the data for ${unread[0].path}`);
    // EVA moves rank to the modules whose inputs have the most variance to explain.
    const modules = entry.redistributeRanks
      ? await entry.redistributeRanks(planned, statistics, spec.rslora)
      : planned;
    // A base-rewriting init trains against W − s·B₀·A₀ in f32: on a quantized base that is a
    // full-precision copy of every adapted matrix, the memory quantizing saved.
    const quantized = modules.find((m) => isQuantized(base.weight(`${m.path}.weight`).dtype));
    if (mutatesBase(spec.init) && quantized)
      throw new RangeError(
        `${spec.init} rewrites the base weights it adapts, but ${quantized.path} is kept quantized (${base.weight(`${quantized.path}.weight`).dtype}): its residual would be a full f32 copy; choose an init that leaves the base as it is (lora, gaussian, eva…) or load the model in f16/f32`,
      );
    const factors = new Map<string, { a: Tensor; b: Tensor }>();
    const grads = new Map<string, FactorGradients>();
    const residuals = new Map<string, Tensor>();
    const initial = new Map<string, HostFactors>();
    const startCores = new Map<string, Float32Array>();
    const adapter = new TrainableAdapter(gpu, spec, modules, factors, grads, residuals, initial);
    try {
      for (const [i, m] of modules.entries()) {
        onModule?.(i, modules.length, m.path);
        const init = await initFactors(
          gpu,
          m,
          base.weight(`${m.path}.weight`),
          spec.init,
          seed + i,
          statistics.get(m.path),
          spec.basis,
        );
        factors.set(m.path, { a: init.a, b: init.b });
        const gradient = (trained: Trained, shape: readonly number[]) =>
          entry.trains.includes(trained)
            ? createTensor(gpu, shape, 'f32', `${m.path} d${trained}`)
            : undefined;
        grads.set(m.path, {
          a: gradient('a', init.a.shape),
          b: gradient('b', init.b.shape),
          core: gradient('diagonal', [m.rank, m.rank]) ?? gradient('core', [m.rank, m.rank]),
          gain: gradient('gain', [1]),
        });
        if (init.core) startCores.set(m.path, init.core);
        if (init.residual) {
          residuals.set(`${m.path}.weight`, init.residual);
          const b = await readF32(gpu, init.b);
          initial.set(m.path, {
            a: await readF32(gpu, init.a),
            b: init.core ? timesCore(b, init.core) : b,
          });
        }
      }
      await adapter.startVariant(base);
      const bs = new Map([...factors].map(([path, f]) => [path, f.b]));
      // DyLoRA's core is set each step; SVFit's and LoRA-SB's start at zero, SORSA's and
      // LoLDU's where their init puts them, and train (the diagonal; the whole matrix; LoLDU's
      // with a gain).
      const mask = coreMask(entry.trains);
      if (spec.dylora)
        adapter.cores = await FactorCores.create(gpu, modules, bs, {
          initial: (m) => identity(m.rank),
        });
      else if (mask)
        adapter.cores = await FactorCores.create(gpu, modules, bs, {
          initial: (m) => startCores.get(m.path) ?? new Float32Array(m.rank * m.rank),
          trained: (m) => mask(m.rank),
          gain: entry.trains.includes('gain'),
        });
      onModule?.(modules.length, modules.length, '');
    } catch (e) {
      adapter.dispose();
      throw e;
    }
    return adapter;
  }

  /** Starts the variant's state and vectors of every module, with the vectors' gradients. */
  private async startVariant(base: Transformer): Promise<void> {
    const engine = variantEngine(this.spec.variant);
    // One module at a time: DoRA squares W in a weight-sized temporary.
    for (const m of this.modules) {
      const f = this.factors.get(m.path);
      const grads = this.grads.get(m.path);
      if (!f || !grads) continue;
      const weight = this.trainedWeight(base, m.path);
      const state = await engine.startTraining(this.gpu, { ...f, scale: m.scale, weight });
      this.variants.set(m.path, state);
      for (const v of this.variant.vectors) {
        const value = state.vectors[v.field];
        if (value)
          grads[v.field] = createTensor(this.gpu, value.shape, 'f32', `${m.path} d${v.field}`);
      }
    }
  }

  /**
   * Recomputes what the variant derives from the factors and vectors (DoRA's row norms and
   * scales): after every change of them (an optimiser step, a checkpoint written back).
   */
  async refresh(): Promise<void> {
    await this.cores?.recompute();
    const refreshing = [...this.variants.values()].filter((v) => v.refresh !== undefined);
    if (refreshing.length === 0) return;
    await this.withScratch((batch, keep) => {
      for (const v of refreshing) v.refresh?.(batch, keep);
    });
  }

  /**
   * Where the backward writes each module's gradients: the parameters' own, except that where a
   * core sits between B and A, B's gradient goes to ∂L/∂(B·C) first (finishGradients).
   */
  get backwardGrads(): ReadonlyMap<string, FactorGradients> {
    const cores = this.cores;
    if (!cores) return this.grads;
    return new Map(
      [...this.grads].map(([path, g]) => [path, { ...g, b: cores.effectiveGrad(path) }]),
    );
  }

  /** Before a step's forward and backward: DyLoRA truncates each module to a drawn rank. */
  async startStep(seed: number, step: number): Promise<void> {
    if (!this.cores || !this.spec.dylora) return;
    const ranks = drawnRanks(this.modules, seed, step);
    this.cores.set(
      new Map(
        this.modules.map((m, i) => [m.path, { core: truncation(m, ranks[i], this.spec.rslora) }]),
      ),
    );
    await this.cores.recompute();
  }

  /** After a step's backward: the parameters' gradients from what the backward wrote. */
  async finishGradients(): Promise<void> {
    if (!this.cores) return;
    await this.cores.gradients(this.grads);
    // DyLoRA rests at full rank between steps.
    if (this.spec.dylora) {
      this.cores.set(new Map(this.modules.map((m) => [m.path, { core: identity(m.rank) }])));
      await this.cores.recompute();
    }
  }

  /**
   * SORSA's orthonormal regulariser: γ·∂R joins B's and A's gradients (after finishGradients);
   * returns how far from orthonormal they are before the step (src/train/orthonormal.ts).
   */
  async regulariseOrthonormal(gamma: number): Promise<number> {
    return addOrthonormalGradients(
      this.gpu,
      this.modules.flatMap((m) => {
        const f = this.factors.get(m.path);
        const g = this.grads.get(m.path);
        return f && g ? [{ ...f, grads: g }] : [];
      }),
      gamma,
    );
  }

  /**
   * Whether a core between B and A trains (SVFit, LoRA-SB): it is then checkpointed with them and
   * exported folded into B.
   */
  private get coreTrains(): boolean {
    return this.cores !== undefined && !this.spec.dylora;
  }

  /** Runs one batch; tensors handed to `keep` are released after it. */
  private async withScratch(
    record: (batch: Batch, keep: (t: Tensor) => Tensor) => void,
  ): Promise<void> {
    const scratch: Tensor[] = [];
    try {
      await run(this.gpu, (batch) => {
        record(batch, (t) => {
          scratch.push(t);
          return t;
        });
      });
    } finally {
      releaseTensor(this.gpu, ...scratch);
    }
  }

  /** The weight a module trains against: the residual of a base-mutating init, or the base's. */
  private trainedWeight(base: Transformer, path: string): Tensor {
    const name = `${path}.weight`;
    return this.residuals.get(name) ?? base.weight(name);
  }

  get init(): InitMethod {
    return this.spec.init;
  }

  get mutatesBase(): boolean {
    return mutatesBase(this.spec.init);
  }

  /**
   * The model as training sees it: residual weights, this adapter on its modules. Variant terms
   * read their state as each pass is recorded, since refresh replaces it (DoRA's scales).
   */
  view(base: Transformer): Transformer {
    const dropout = this.spec.dropout || undefined;
    const terms = new Map<string, AdapterTerm[]>();
    for (const m of this.modules) {
      const f = this.factors.get(m.path);
      const grads = this.grads.get(m.path);
      const state = this.variants.get(m.path);
      const b = this.cores?.effectiveB(m.path) ?? f?.b;
      if (f && b && grads && state)
        terms.set(m.path, [{ a: f.a, b, scale: m.scale, dropout, variant: state.term(grads) }]);
    }
    return {
      config: base.config,
      ropeTables: base.ropeTables,
      weight: (name) => this.residuals.get(name) ?? base.weight(name),
      adapterTerms: (path) => terms.get(path) ?? [],
    };
  }

  /** The variant's vectors of a module with their PEFT names (`lora_magnitude_vector`). */
  private vectors(path: string): { key: string; field: VectorField; value: Tensor }[] {
    const state = this.variants.get(path);
    return this.variant.vectors.flatMap(({ key, field }) => {
      const value = state?.vectors[field];
      return value ? [{ key, field, value }] : [];
    });
  }

  /**
   * What the init trains of every module as optimiser parameters — A and B (`<path>.lora_A`,
   * `.lora_B`), B alone, the core between them (`.lora_core`) and its gain (`.lora_core_gain`) —
   * then its variant's vectors
   * (`<path>.lora_magnitude_vector`).
   */
  parameters(): Parameter[] {
    return this.modules.flatMap((m) => {
      const f = this.factors.get(m.path);
      const g = this.grads.get(m.path);
      if (!f || !g) return [];
      const core = this.cores?.core(m.path);
      const gain = this.cores?.gain(m.path);
      const params = [
        ...(g.a ? [{ name: `${m.path}.lora_A`, value: f.a, grad: g.a }] : []),
        ...(g.b ? [{ name: `${m.path}.lora_B`, value: f.b, grad: g.b }] : []),
        ...(g.core && core ? [{ name: `${m.path}.${CORE_KEY}`, value: core, grad: g.core }] : []),
        ...(g.gain && gain ? [{ name: `${m.path}.${GAIN_KEY}`, value: gain, grad: g.gain }] : []),
      ];
      for (const { key, field, value } of this.vectors(m.path)) {
        const grad = g[field];
        if (grad) params.push({ name: `${m.path}.${key}`, value, grad });
      }
      return params;
    });
  }

  /** Every module's A and B with their gradients and scaling (both factors must train). */
  factorsWithGradients(): FactorsWithGradients[] {
    return this.modules.flatMap((m) => {
      const f = this.factors.get(m.path);
      const { a, b } = this.grads.get(m.path) ?? {};
      if (!a || !b) throw new Error(`${m.path}: a factor is frozen; it has no gradient`);
      return f ? [{ path: m.path, scale: m.scale, ...f, grads: { a, b } }] : [];
    });
  }

  /** The trained values of every module: A, B, a trained core, the variant's vectors. */
  async read(): Promise<Map<string, TrainedFactors>> {
    const out = new Map<string, TrainedFactors>();
    for (const [path, f] of this.factors) {
      const read: TrainedFactors = {
        a: await readF32(this.gpu, f.a),
        b: await readF32(this.gpu, f.b),
      };
      if (this.coreTrains && this.cores) Object.assign(read, await this.cores.read(path));
      for (const { field, value } of this.vectors(path))
        read[field] = await readF32(this.gpu, value);
      out.set(path, read);
    }
    return out;
  }

  /**
   * The adapter as HF PEFT files for the original base: base-mutating inits become a rank-2r plain
   * LoRA, or, with `recompressTo`, are brought back to that rank by SVD (the energy lost is
   * reported).
   */
  async peftFiles(
    baseModel: string,
    config: ModelConfig,
    recompressTo?: number,
  ): Promise<{ files: Map<string, Uint8Array>; lostEnergy?: number }> {
    const plain = exportAdapter(
      this.modules,
      await this.plainFactors(),
      this.spec,
      baseModel,
      config,
      this.mutatesBase ? this.initial : undefined,
    );
    if (recompressTo === undefined) return { files: peftFiles(plain) };
    const { adapter, totalLostEnergy } = await recompress(this.gpu, plain, recompressTo);
    return { files: peftFiles(adapter), lostEnergy: totalLostEnergy };
  }

  /**
   * For base-mutating inits, the other way to share: the adapter as trained (rank r) together with
   * the residual weights W − s·B₀·A₀ it was trained against, by weight name, on the host.
   */
  async residualExport(
    baseModel: string,
    config: ModelConfig,
  ): Promise<{ files: Map<string, Uint8Array>; residuals: Map<string, Float32Array> }> {
    const residuals = new Map<string, Float32Array>();
    for (const [name, t] of this.residuals) residuals.set(name, await readF32(this.gpu, t));
    const adapter = exportAdapter(
      this.modules,
      await this.plainFactors(),
      this.spec,
      baseModel,
      config,
    );
    return { files: peftFiles(adapter), residuals };
  }

  /** The trained values as a plain LoRA's factors: a trained core folded into B (B·g·C). */
  private async plainFactors(): Promise<Map<string, TrainedFactors>> {
    const read = await this.read();
    for (const [path, f] of read) {
      const { core, gain, ...rest } = f;
      const g = gain?.[0] ?? 1;
      if (core)
        read.set(path, {
          ...rest,
          b: timesCore(
            f.b,
            core.map((c) => g * c),
          ),
        });
    }
    return read;
  }

  /** Overwrites the factors and the variant's vectors (resuming a checkpoint; refresh follows). */
  write(values: ReadonlyMap<string, TrainedFactors>): void {
    for (const [path, f] of this.factors) {
      const v = values.get(path);
      const vectors = this.vectors(path).map(({ field, value }) => ({ value, data: v?.[field] }));
      if (
        !v ||
        v.a.length !== f.a.numel ||
        v.b.length !== f.b.numel ||
        vectors.some(({ value, data }) => data?.length !== value.numel) ||
        (this.coreTrains && v.core?.length !== this.cores?.core(path)?.numel) ||
        (this.coreTrains && this.cores?.gain(path) && v.gain?.length !== 1)
      )
        throw new RangeError(`checkpoint factors for ${path} are missing or mis-shaped`);
      if (this.coreTrains && v.core)
        this.cores?.set(new Map([[path, { core: v.core, gain: v.gain }]]));
      this.gpu.device.queue.writeBuffer(f.a.buffer, 0, v.a);
      this.gpu.device.queue.writeBuffer(f.b.buffer, 0, v.b);
      for (const { value, data } of vectors)
        if (data) this.gpu.device.queue.writeBuffer(value.buffer, 0, data);
    }
  }

  dispose(): void {
    for (const f of this.factors.values()) releaseTensor(this.gpu, f.a, f.b);
    for (const g of this.grads.values()) {
      const vectors = this.variant.vectors.flatMap((v) => g[v.field] ?? []);
      releaseTensor(this.gpu, ...[g.a, g.b, g.core, g.gain].flatMap((t) => t ?? []), ...vectors);
    }
    for (const v of this.variants.values()) releaseTensor(this.gpu, ...v.tensors());
    releaseTensor(this.gpu, ...this.residuals.values());
    this.cores?.dispose();
    this.factors.clear();
    this.grads.clear();
    this.residuals.clear();
    this.variants.clear();
  }
}

/** Which entries of the core train, for an init that trains one: its diagonal, or all of it. */
function coreMask(trains: readonly Trained[]): ((r: number) => Float32Array) | null {
  if (trains.includes('diagonal')) return identity;
  if (trains.includes('core')) return (r) => new Float32Array(r * r).fill(1);
  return null;
}

/** B·C on the host: B [out × r], C [r × r], row-major. */
function timesCore(b: Float32Array, core: Float32Array): Float32Array {
  const r = Math.round(Math.sqrt(core.length));
  const out = new Float32Array(b.length);
  for (let o = 0; o < b.length / r; o++)
    for (let j = 0; j < r; j++) {
      let sum = 0;
      for (let k = 0; k < r; k++) sum += b[o * r + k] * core[k * r + j];
      out[o * r + j] = sum;
    }
  return out;
}
