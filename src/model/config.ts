/**
 * The architecture of a Llama-family model, normalised from an HF config.json or a llama2.c
 * header. Weights use the HF names and layout (src/model/weights.ts).
 */
export interface ModelConfig {
  /** Where it came from, e.g. "llama" (HF model_type) or "llama2c". */
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Qwen2: q/k/v projections carry a bias. */
  attentionBias: boolean;
  bosTokenId: number;
  /** Tokens that end generation (Llama 3 and chat models list several). */
  eosTokenIds: number[];
}
