// The adapter being trained, on the GPU: factors, their gradients, the residual weights of
// base-mutating inits, and the transformer view that trains against them (the base model's
// weights stay untouched, so the original is there for export and for other adapters).
import type { AdaptedModule, HostFactors, InitMethod, LoraSpec } from '../adapters/config.ts';
import { adaptedModules, mutatesBase } from '../adapters/config.ts';
import { initFactors } from '../adapters/init.ts';
import { exportAdapter, peftFiles } from '../adapters/peft.ts';
import { recompress } from '../adapters/recompress.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Gpu } from '../gpu/device.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, type Tensor } from '../gpu/tensor.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import type { FactorGradients } from './backward.ts';
import type { Parameter } from './optimizer.ts';

export class TrainableAdapter {
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
  ): Promise<TrainableAdapter> {
    const modules = adaptedModules(base.config, spec);
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
      onModule?.(modules.length, modules.length, '');
    } catch (e) {
      adapter.dispose();
      throw e;
    }
    return adapter;
  }

  get init(): InitMethod {
    return this.spec.init;
  }

  get mutatesBase(): boolean {
    return mutatesBase(this.spec.init);
  }

  /** The model as training sees it: residual weights, this adapter on its modules. */
  view(base: Transformer): Transformer {
    const terms = new Map<string, AdapterTerm[]>();
    for (const m of this.modules) {
      const f = this.factors.get(m.path);
      if (f) terms.set(m.path, [{ ...f, scale: m.scale, dropout: this.spec.dropout || undefined }]);
    }
    return {
      config: base.config,
      cosSin: base.cosSin,
      weight: (name) => this.residuals.get(name) ?? base.weight(name),
      adapterTerms: (path) => terms.get(path) ?? [],
    };
  }

  /** A and B of every module as optimiser parameters, named `<path>.lora_A` / `.lora_B`. */
  parameters(): Parameter[] {
    return this.modules.flatMap((m) => {
      const f = this.factors.get(m.path);
      const g = this.grads.get(m.path);
      if (!f || !g) return [];
      return [
        { name: `${m.path}.lora_A`, value: f.a, grad: g.a },
        { name: `${m.path}.lora_B`, value: f.b, grad: g.b },
      ];
    });
  }

  async read(): Promise<Map<string, HostFactors>> {
    const out = new Map<string, HostFactors>();
    for (const [path, f] of this.factors)
      out.set(path, { a: await readF32(this.gpu, f.a), b: await readF32(this.gpu, f.b) });
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

  /** Overwrites the factors (resuming from a checkpoint). */
  write(values: ReadonlyMap<string, HostFactors>): void {
    for (const [path, f] of this.factors) {
      const v = values.get(path);
      if (!v || v.a.length !== f.a.numel || v.b.length !== f.b.numel)
        throw new RangeError(`checkpoint factors for ${path} are missing or mis-shaped`);
      this.gpu.device.queue.writeBuffer(f.a.buffer, 0, v.a);
      this.gpu.device.queue.writeBuffer(f.b.buffer, 0, v.b);
    }
  }

  dispose(): void {
    for (const f of this.factors.values()) releaseTensor(this.gpu, f.a, f.b);
    for (const g of this.grads.values()) releaseTensor(this.gpu, g.a, g.b);
    releaseTensor(this.gpu, ...this.residuals.values());
    this.factors.clear();
    this.grads.clear();
    this.residuals.clear();
  }
}
