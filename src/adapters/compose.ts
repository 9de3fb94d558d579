// Adapters composed into a copy of a model's weights on the host: the CPU reference of the
// run-time composition the GPU applies (peft-read.ts adapterTerms, model/transformer.ts), and
// what the CPU engine runs where WebGPU is missing. Every term is computed from the base weights,
// as the GPU's are, so adapters add independently; a module adds as its adapter's variant says
// (src/adapters/variants/):
//   LoRA            W + w·s·B·A
//   DoRA            W + w·(diag(g)·(W + s·B·A) − W),  g = m / ‖W + s·B·A‖ per output row
//   embedding LoRA  E + w·s·(B·A)ᵀ, at the lookup only: a tied head keeps reading E
//   whole weights   W + Σ w·(T − W)  (modules_to_save)
// Products and norms are summed in f64. Tensors no adapter touches are shared, not copied.
import { productRow } from '../linalg/cpu/dense.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import type { HostTensor, ModelWeights } from '../model/weights.ts';
import { misfit, shapeMismatches, type AdapterModule, type PeftAdapter } from './peft-read.ts';
import { variantEngine, type VariantEngine } from './variants/engine.ts';

export type Composition = readonly { adapter: PeftAdapter; weight: number }[];

/** Adds the module's term at `weight` to `target` (the composed W), computed from the base W. */
function addTerm(
  engine: VariantEngine,
  target: Float32Array,
  base: Float32Array,
  m: AdapterModule,
  weight: number,
) {
  const width = m.a.length / m.rank;
  const out = m.b.length / m.rank;
  const row = new Float64Array(width);
  for (let o = 0; o < out; o++) {
    productRow(m, m.scale, o, row);
    const w0 = base.subarray(o * width, (o + 1) * width);
    const t = target.subarray(o * width, (o + 1) * width);
    engine.composeRow(t, w0, row, m, o, weight);
  }
}

/** Adds w·s·(B·A)ᵀ to the embedding table (vocab × dim); A is r × vocab, B dim × r. */
function addEmbeddingTerm(table: Float32Array, m: AdapterModule, weight: number) {
  const vocab = m.a.length / m.rank;
  const dim = m.b.length / m.rank;
  const row = new Float64Array(vocab);
  for (let d = 0; d < dim; d++) {
    productRow(m, weight * m.scale, d, row);
    for (let v = 0; v < vocab; v++) table[v * dim + d] += row[v];
  }
}

/**
 * The model's weights (and config) with the composition applied. A tied head stays the base
 * table when an embedding LoRA changes the lookup: the result is then untied, with the head as
 * its own tensor. Refuses an adapter that does not fit the model, as adapterTerms does.
 */
export function composeWeights(
  config: ModelConfig,
  base: ModelWeights,
  composition: Composition,
): { config: ModelConfig; weights: ModelWeights } {
  for (const { adapter } of composition) {
    const problems = shapeMismatches(adapter, config);
    if (problems.length > 0) throw new FormatError(adapter.name, misfit(problems));
  }
  const weights = new Map(base);
  const baseData = (name: string) => {
    const t = base.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t.data;
  };
  // Copied on first change; the copy holds values no half format need represent.
  const writable = (name: string): Float32Array => {
    const current = weights.get(name)!;
    if (current !== base.get(name)) return current.data;
    const copy: HostTensor = { shape: current.shape, data: current.data.slice() };
    weights.set(name, copy);
    return copy.data;
  };
  for (const { adapter, weight } of composition)
    for (const [name, full] of adapter.fullWeights) {
      const w0 = baseData(name);
      const t = writable(name);
      for (let i = 0; i < t.length; i++) t[i] += weight * (full.data[i] - w0[i]);
    }
  let composedConfig = config;
  const embedding = `${config.arch.embedding}.weight`;
  for (const { adapter, weight } of composition) {
    const engine = variantEngine(adapter.details.variant);
    for (const [path, m] of adapter.modules) {
      if (m.embedding) {
        if (composedConfig.tieWordEmbeddings) {
          // The head as the table is now (whole weights applied), kept apart from the lookup's.
          const table = weights.get(embedding)!;
          const head =
            table === base.get(embedding) ? table : { ...table, data: table.data.slice() };
          weights.set('lm_head.weight', head);
          composedConfig = {
            ...composedConfig,
            tieWordEmbeddings: false,
            arch: { ...composedConfig.arch, head: 'lm_head' },
          };
        }
        addEmbeddingTerm(writable(embedding), m, weight);
      } else {
        const name = `${path}.weight`;
        addTerm(engine, writable(name), baseData(name), m, weight);
      }
    }
  }
  return { config: composedConfig, weights };
}
