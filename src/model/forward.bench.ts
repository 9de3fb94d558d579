// Prefill and decode speed of the forward pass on the built-in stories260K model: on the GPU
// (the Node run and the Chromium page of `lora-studio bench`), and on the CPU reference forward
// the studio falls back to without WebGPU.
import type { Gpu } from '../gpu/device.ts';
import { medianMs } from '../gpu/timing.ts';
import { cpuRunner } from './cpu/runner.ts';
import { createGpuModel, type Runner } from './forward.ts';
import { readLlama2c } from './llama2c.ts';

export interface ModelBenchRow {
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

const PREFILL = 256;
const DECODE = 128;

export async function benchStories(
  gpu: Gpu,
  checkpoint: Uint8Array,
  reps: number,
): Promise<ModelBenchRow> {
  const { config, weights } = readLlama2c(checkpoint, 'stories260K.bin');
  const model = createGpuModel(gpu, config, weights);
  try {
    return await benchRunner(model, reps);
  } finally {
    model.dispose();
  }
}

export function benchStoriesOnCpu(checkpoint: Uint8Array, reps: number): Promise<ModelBenchRow> {
  const { config, weights } = readLlama2c(checkpoint, 'stories260K.bin');
  return benchRunner(cpuRunner(config, weights), reps);
}

async function benchRunner(model: Runner, reps: number): Promise<ModelBenchRow> {
  const prompt = Array.from({ length: PREFILL }, (_, i) => 3 + ((i * 37) % 500));
  const prefillMs = await medianMs(async (iters) => {
    for (let i = 0; i < iters; i++) await model.forward(prompt, 0);
  }, reps);
  // One decode run: DECODE single-token steps after a one-token prompt, each read back.
  const decodeMs = await medianMs(async (iters) => {
    for (let i = 0; i < iters; i++) {
      for (let pos = 0; pos < DECODE; pos++) await model.forward([prompt[pos]], pos);
    }
  }, reps);
  return {
    prefillTokensPerSecond: (PREFILL * 1000) / prefillMs,
    decodeTokensPerSecond: (DECODE * 1000) / decodeMs,
  };
}
