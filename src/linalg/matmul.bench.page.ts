// Browser side of `lora-studio bench`: times our matmul and TF.js's WebGPU backend in the
// same page, on the same adapter, with the same protocol (medianMs), and leaves the rows in
// `window.benchResults` for the driver (src/cli/bench.ts).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { errorMessage } from '../errors.ts';
import { acquireGpu } from '../gpu/device.ts';
import { benchStories, type ModelBenchRow } from '../model/forward.bench.ts';
import { benchTraining, type TrainBenchRow } from '../train/train.bench.ts';
import { viteShaders } from '../gpu/shaders-vite.ts';
import { medianMs } from '../gpu/timing.ts';
import { describeTile } from './matmul.ts';
import { gflops, operandShapes, timeOurMatmul } from './matmul.bench.ts';
import { gaussian } from './random.ts';
import { REPRESENTATIVE_PROBLEMS, tuneMatmul, type NamedProblem } from './matmul-tuning.ts';

export interface BrowserBenchRow {
  name: string;
  tile: string;
  oursMs: number;
  oursGflops: number;
  tfjsMs: number;
  tfjsGflops: number;
}

export interface BrowserBenchResults {
  adapter: string;
  rows: BrowserBenchRow[];
  model: ModelBenchRow;
  training: TrainBenchRow[];
}

declare global {
  interface Window {
    benchResults?: BrowserBenchResults | { error: string };
  }
}

const log = document.getElementById('log')!;
const query = new URLSearchParams(location.search);
const reps = Number(query.get('reps') ?? '7');
const quick = query.has('quick');

async function timeTfjs(c: NamedProblem): Promise<number> {
  const shapes = operandShapes(c);
  const a = tf.tensor(gaussian(c.M * c.K, 1), shapes.a);
  const b = tf.tensor(gaussian(c.K * c.N, 2), shapes.b);
  try {
    return await medianMs(async (iters) => {
      const outs: tf.Tensor[] = [];
      for (let i = 0; i < iters; i++) outs.push(tf.matMul(a, b, c.transA, c.transB));
      await outs[outs.length - 1].data();
      tf.dispose(outs);
    }, reps);
  } finally {
    tf.dispose([a, b]);
  }
}

async function main(): Promise<void> {
  const entry = navigator.gpu as GPU | undefined;
  if (!entry) throw new Error('no WebGPU in this browser');
  const gpu = await acquireGpu(entry, { shaders: viteShaders });
  await tf.setBackend('webgpu');
  await tf.ready();
  const rows: BrowserBenchRow[] = [];
  for (const c of REPRESENTATIVE_PROBLEMS) {
    const tile = await tuneMatmul(gpu, c);
    const oursMs = await timeOurMatmul(gpu, c, reps);
    const tfjsMs = await timeTfjs(c);
    rows.push({
      name: c.name,
      tile: describeTile(tile),
      oursMs,
      oursGflops: gflops(c, oursMs),
      tfjsMs,
      tfjsGflops: gflops(c, tfjsMs),
    });
    log.textContent = rows.map((r) => JSON.stringify(r)).join('\n');
  }
  const checkpoint = new Uint8Array(await (await fetch('/models/stories260K.bin')).arrayBuffer());
  const model = await benchStories(gpu, checkpoint, reps);
  const training = await benchTraining(gpu, checkpoint, quick, (row) => {
    log.textContent += `\n${JSON.stringify(row)}`;
  });
  window.benchResults = {
    adapter: `${gpu.adapter.vendor} ${gpu.adapter.architecture}`,
    rows,
    model,
    training,
  };
  gpu.destroy();
}

main().catch((e: unknown) => {
  window.benchResults = { error: errorMessage(e) };
  log.textContent = String(e);
});
