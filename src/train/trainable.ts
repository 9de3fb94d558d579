// The adapter being trained, on the GPU: factors, their gradients, the residual weights of
// base-mutating inits, DoRA's magnitudes and row norms, and the transformer view that trains
// against them (the base model's weights stay untouched, so the original is there for export and
// for other adapters).
import type { AdaptedModule, HostFactors, InitMethod, LoraSpec } from '../adapters/config.ts';
import { adaptedModules } from '../adapters/config.ts';
import { initFactors } from '../adapters/init.ts';
import { initEntry, mutatesBase, type InitStatistics } from '../adapters/inits.ts';
import { exportAdapter, peftFiles, type TrainedFactors } from '../adapters/peft.ts';
import { recompress } from '../adapters/recompress.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Gpu } from '../gpu/device.ts';
import { run, type Batch } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, type Tensor } from '../gpu/tensor.ts';
import { affine, binary } from '../linalg/elementwise.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import type { FactorGradients } from './backward.ts';
import { doraRowNorms, weightRowSquares, type DoraState } from './dora.ts';
import type { Parameter } from './optimizer.ts';

/** One module's factors with their gradients, as LoRA-Pro's gradient correction needs them. */
export interface FactorsWithGradients {
  path: string;
  scale: number;
  a: Tensor;
  b: Tensor;
  grads: FactorGradients;
}

export class TrainableAdapter {
  /** DoRA modules by path (empty without DoRA). */
  private readonly dora = new Map<string, DoraState>();

  private constructor(
    private readonly gpu: Gpu,
    readonly spec: LoraSpec,
    readonly modules: readonly AdaptedModule[],
    private readonly factors: Map<string, { a: Tensor; b: Tensor }>,
    readonly grads: Map<string, FactorGradients>,
    private readonly residuals: Map<string, Tensor>,
    /** A₀ and B₀ of base-mutating inits: export converts against them. */
    readonly initial: Map<string, HostFactors>,
  ) {}

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
    const factors = new Map<string, { a: Tensor; b: Tensor }>();
    const grads = new Map<string, FactorGradients>();
    const residuals = new Map<string, Tensor>();
    const initial = new Map<string, HostFactors>();
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
        );
        factors.set(m.path, { a: init.a, b: init.b });
        grads.set(m.path, {
          a: createTensor(gpu, init.a.shape, 'f32', `${m.path} dA`),
          b: createTensor(gpu, init.b.shape, 'f32', `${m.path} dB`),
        });
        if (init.residual) {
          residuals.set(`${m.path}.weight`, init.residual);
          initial.set(m.path, { a: await readF32(gpu, init.a), b: await readF32(gpu, init.b) });
        }
      }
      if (spec.dora) await adapter.initDora(base);
      onModule?.(modules.length, modules.length, '');
    } catch (e) {
      adapter.dispose();
      throw e;
    }
    return adapter;
  }

  /**
   * DoRA's magnitudes start at ‖W + s·B₀·A₀‖_row (‖W‖_row for every init: base-mutating ones
   * train against W − s·B₀·A₀), so the row scales are exactly 1 and the output is unchanged.
   */
  private async initDora(base: Transformer): Promise<void> {
    // One module at a time: squaring W takes a weight-sized temporary.
    for (const m of this.modules) {
      const f = this.factors.get(m.path);
      const grads = this.grads.get(m.path);
      if (!f || !grads) continue;
      await this.withScratch((batch, keep) => {
        const weight = this.trainedWeight(base, m.path);
        const weightSquares = weightRowSquares(batch, weight, keep);
        const norm = doraRowNorms(batch, weight, weightSquares, f.a, f.b, m.scale, keep);
        const magnitude = affine(batch, norm, 1);
        const rowScale = binary(batch, 'div', magnitude, norm);
        this.dora.set(m.path, { magnitude, weightSquares, norm, rowScale });
        grads.m = createTensor(this.gpu, [m.out], 'f32', `${m.path} dm`);
      });
    }
  }

  /**
   * Recomputes DoRA's row norms ‖W + s·B·A‖ and scales m / ‖…‖ from the current values: after
   * every change of the factors or magnitudes (an optimiser step, a checkpoint written back).
   */
  async refreshDora(base: Transformer): Promise<void> {
    if (this.dora.size === 0) return;
    await this.withScratch((batch, keep) => {
      for (const m of this.modules) {
        const state = this.dora.get(m.path);
        const f = this.factors.get(m.path);
        if (!state || !f) continue;
        // The previous ones go once the batch is submitted.
        keep(state.norm);
        keep(state.rowScale);
        const weight = this.trainedWeight(base, m.path);
        state.norm = doraRowNorms(batch, weight, state.weightSquares, f.a, f.b, m.scale, keep);
        state.rowScale = binary(batch, 'div', state.magnitude, state.norm);
      }
    });
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
   * The model as training sees it: residual weights, this adapter on its modules. DoRA terms are
   * looked up at each forward pass, since refreshDora replaces their scales.
   */
  view(base: Transformer): Transformer {
    const scales = new Map(this.modules.map((m) => [m.path, m.scale]));
    const dropout = this.spec.dropout || undefined;
    const termsOf = (path: string): AdapterTerm[] => {
      const f = this.factors.get(path);
      const scale = scales.get(path);
      if (!f || scale === undefined) return [];
      const d = this.dora.get(path);
      const dora = d && { rowScale: d.rowScale, norm: d.norm, weight: 1 };
      return [{ ...f, scale, dropout, dora }];
    };
    return {
      config: base.config,
      cosSin: base.cosSin,
      weight: (name) => this.residuals.get(name) ?? base.weight(name),
      adapterTerms: termsOf,
    };
  }

  /**
   * A and B of every module as optimiser parameters, named `<path>.lora_A` / `.lora_B`, and
   * DoRA's magnitudes (`<path>.lora_magnitude_vector`).
   */
  parameters(): Parameter[] {
    return this.modules.flatMap((m) => {
      const f = this.factors.get(m.path);
      const g = this.grads.get(m.path);
      if (!f || !g) return [];
      const params = [
        { name: `${m.path}.lora_A`, value: f.a, grad: g.a },
        { name: `${m.path}.lora_B`, value: f.b, grad: g.b },
      ];
      const magnitude = this.dora.get(m.path)?.magnitude;
      if (magnitude && g.m)
        params.push({ name: `${m.path}.lora_magnitude_vector`, value: magnitude, grad: g.m });
      return params;
    });
  }

  /** Every module's A and B with their gradients and scaling. */
  factorsWithGradients(): FactorsWithGradients[] {
    return this.modules.flatMap((m) => {
      const f = this.factors.get(m.path);
      const grads = this.grads.get(m.path);
      return f && grads ? [{ path: m.path, scale: m.scale, ...f, grads }] : [];
    });
  }

  async read(): Promise<Map<string, TrainedFactors>> {
    const out = new Map<string, TrainedFactors>();
    for (const [path, f] of this.factors) {
      const d = this.dora.get(path);
      out.set(path, {
        a: await readF32(this.gpu, f.a),
        b: await readF32(this.gpu, f.b),
        ...(d ? { magnitude: await readF32(this.gpu, d.magnitude) } : {}),
      });
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
      await this.read(),
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
    const adapter = exportAdapter(this.modules, await this.read(), this.spec, baseModel, config);
    return { files: peftFiles(adapter), residuals };
  }

  /** Overwrites the factors and magnitudes (resuming from a checkpoint; refreshDora follows). */
  write(values: ReadonlyMap<string, TrainedFactors>): void {
    for (const [path, f] of this.factors) {
      const v = values.get(path);
      const magnitude = this.dora.get(path)?.magnitude;
      if (
        !v ||
        v.a.length !== f.a.numel ||
        v.b.length !== f.b.numel ||
        (magnitude && v.magnitude?.length !== magnitude.numel)
      )
        throw new RangeError(`checkpoint factors for ${path} are missing or mis-shaped`);
      this.gpu.device.queue.writeBuffer(f.a.buffer, 0, v.a);
      this.gpu.device.queue.writeBuffer(f.b.buffer, 0, v.b);
      if (magnitude && v.magnitude)
        this.gpu.device.queue.writeBuffer(magnitude.buffer, 0, v.magnitude);
    }
  }

  dispose(): void {
    for (const f of this.factors.values()) releaseTensor(this.gpu, f.a, f.b);
    for (const g of this.grads.values()) releaseTensor(this.gpu, g.a, g.b, ...(g.m ? [g.m] : []));
    for (const d of this.dora.values())
      releaseTensor(this.gpu, d.magnitude, d.weightSquares, d.norm, d.rowScale);
    releaseTensor(this.gpu, ...this.residuals.values());
    this.factors.clear();
    this.grads.clear();
    this.residuals.clear();
    this.dora.clear();
  }
}
