// A loaded model with adapters applied at weights: what generation and perplexity run, in the
// studio and the CLI. On the GPU the adapters are run-time terms over the uploaded base
// (peft-read.ts adapterTerms); where WebGPU is missing the CPU reference forward runs on a copy
// of the weights with the adapters composed in (compose.ts). Either way `apply` builds the new
// composition completely before it replaces the old, so a refusal changes nothing.
import type { Gpu } from '../gpu/device.ts';
import { decodeHalf, encodeHalf } from '../gpu/half.ts';
import { isQuantized, quantType, releaseTensor, type DType, type Tensor } from '../gpu/tensor.ts';
import type { ModelConfig } from '../model/config.ts';
import { cpuRunner } from '../model/cpu/runner.ts';
import { createGpuModel, type GpuModel, type Runner } from '../model/forward.ts';
import { dequantize } from '../model/gguf/quant-types.ts';
import { blocksOf } from '../model/quantize.ts';
import { gpuDType, type ModelWeights, type WeightPrecision } from '../model/weights.ts';
import { composeWeights, type Composition } from './compose.ts';
import { adapterTerms } from './peft-read.ts';

interface Adapted extends Runner {
  /** Replaces the applied adapters (an empty composition: the base model). */
  apply(composition: Composition): Promise<void>;
  /** Memory the weights take, and their dtypes, the one holding most bytes first. */
  readonly weightBytes: number;
  readonly weightDTypes: readonly DType[];
}

export interface GpuAdaptedModel extends Adapted {
  readonly where: 'gpu';
  readonly gpu: Gpu;
  /** The model on the GPU: training and the GPU merge report build on its base. */
  readonly model: GpuModel;
}

export interface CpuAdaptedModel extends Adapted {
  readonly where: 'cpu';
  /** The base weights, without the applied adapters. */
  readonly weights: ModelWeights;
}

export type AdaptedModel = GpuAdaptedModel | CpuAdaptedModel;

export function adaptedGpuModel(
  gpu: Gpu,
  config: ModelConfig,
  weights: ModelWeights,
  precision: WeightPrecision = 'file',
): GpuAdaptedModel {
  const model = createGpuModel(gpu, config, weights, precision);
  let applied: Tensor[] = [];
  const release = () => {
    releaseTensor(gpu, ...applied);
    applied = [];
  };
  return {
    where: 'gpu',
    gpu,
    model,
    config,
    weightBytes: model.weightBytes,
    weightDTypes: model.weightDTypes,
    forward: (tokens, pos0) => model.forward(tokens, pos0),
    forwardAll: (tokens, pos0) => model.forwardAll(tokens, pos0),
    async apply(composition) {
      const { terms, overrides, tensors } = await adapterTerms(gpu, model.base, composition);
      release();
      applied = tensors;
      model.setAdapters(terms, overrides);
    },
    dispose() {
      // After a device loss the buffers went with the device.
      try {
        release();
        model.dispose();
      } catch {
        applied = [];
      }
    },
  };
}

/**
 * The weights with their values as the GPU would hold them at `precision`: matrices rounded to
 * the half format or quantized into the blocks asked for (the CPU keeps them in f32, with the
 * same values: the blocks' exact dequantization).
 */
function heldAt(weights: ModelWeights, precision: WeightPrecision): ModelWeights {
  return new Map(
    [...weights].map(([name, t]) => {
      const dtype = gpuDType(t, precision);
      if (isQuantized(dtype)) {
        const type = quantType(dtype).name;
        if (t.quantized?.type === type) return [name, t];
        return [
          name,
          { shape: t.shape, data: dequantize(type, blocksOf(t, dtype), t.data.length) },
        ];
      }
      if ((dtype !== 'f16' && dtype !== 'bf16') || t.half === dtype) return [name, t];
      return [name, { ...t, data: decodeHalf(encodeHalf(t.data, dtype), dtype), half: dtype }];
    }),
  );
}

export function adaptedCpuModel(
  config: ModelConfig,
  fileWeights: ModelWeights,
  precision: WeightPrecision = 'file',
): CpuAdaptedModel {
  const weights = heldAt(fileWeights, precision);
  let runner = cpuRunner(config, weights);
  const bytes = [...weights.values()].reduce((n, t) => n + 4 * t.data.length, 0);
  return {
    where: 'cpu',
    weights,
    config,
    weightBytes: bytes,
    weightDTypes: ['f32'],
    forward: (tokens, pos0) => runner.forward(tokens, pos0),
    forwardAll: (tokens, pos0) => runner.forwardAll(tokens, pos0),
    async apply(composition) {
      await Promise.resolve(); // a refusal rejects the promise instead of throwing at the call
      const composed = composeWeights(config, weights, composition);
      runner = cpuRunner(composed.config, composed.weights);
    },
    dispose: () => undefined,
  };
}
