/** One weight tensor in HF layout (Linear weights are (out, in)), as f32 on the host. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** A model's weights by HF name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
export type ModelWeights = Map<string, HostTensor>;
