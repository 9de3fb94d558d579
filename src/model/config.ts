import { fusedParts, type Architecture, type ModuleSpec } from './architecture.ts';

/**
 * A model, normalised from an HF config.json or a llama2.c header: its sizes and its
 * architecture as data (src/model/architecture.ts). Weights use the HF names, with every linear
 * weight [out, in] (src/model/weights.ts).
 */
export interface ModelConfig {
  /** Where it came from, e.g. "llama" (HF model_type) or "llama2c". */
  modelType: string;
  hiddenSize: number;
  /** The MLP's inner width. */
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Positions the engine runs (its KV cache and rotary tables): at most the model's own. */
  maxPositions: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number;
  /** Tokens that end generation (Llama 3 and chat models list several). */
  eosTokenIds: number[];
  arch: Architecture;
  /** The config.json it was read from, written back when the model is exported. */
  source?: Record<string, unknown>;
}

/** The outputs a module holds side by side: one, or a fused module's parts (qkv, gate_up). */
export function moduleParts(config: ModelConfig, module: ModuleSpec) {
  return fusedParts(module, {
    q: config.numHeads * config.headDim,
    kv: config.numKvHeads * config.headDim,
    ff: config.intermediateSize,
  });
}
