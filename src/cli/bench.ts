import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { acquireGpu, adapterName, type Gpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { fileTuningStore } from '../gpu/tuning-file.ts';
import { persistTuning, restoreTuning } from '../gpu/tuning.ts';
import { columns, frobenius, mat, multiply, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { decaying, withSpectrum } from '../linalg/cpu/generate.ts';
import type { BrowserBenchResults } from '../linalg/matmul.bench.page.ts';
import { describeTile } from '../linalg/matmul.ts';
import { gflops, timeOurMatmul, WEIGHT_PROBLEMS } from '../linalg/matmul.bench.ts';
import { REPRESENTATIVE_PROBLEMS, tuneMatmul } from '../linalg/matmul-tuning.ts';
import { readMat, uploadMat } from '../linalg/host.ts';
import { exactSvd, randomizedSvd, type SvdResult } from '../linalg/svd.ts';
import { launchChromium } from '../testing/chromium.ts';
import { benchStories, benchStoriesOnCpu, type ModelBenchRow } from '../model/forward.bench.ts';
import { benchTraining, type TrainBenchRow } from '../train/train.bench.ts';
import { benchMerges, type MergeBenchRow } from '../merge/merge.bench.ts';
import { benchTokenize } from '../train/tokenize.bench.ts';
import { formatBytes } from '../units.ts';
import {
  agreement,
  benchOurs,
  CONTEXT,
  DECODE,
  FILE_TYPES,
  LLAMA_1B_SHAPE,
  loadPeer,
  modelFile,
  PREFILL,
  type EngineRun,
} from '../model/gguf-1b.bench.ts';
import { errorMessage } from '../errors.ts';
import { UsageError } from './args.ts';

/**
 * `lora-studio bench [--quick] [--node-only]`: matmul GFLOP/s vs TF.js WebGPU, SVD timings,
 * forward-pass and training speed. `--gguf-1b [--peer PATH] [--quick]` instead: a 1B model from
 * GGUF files, ours against llama.cpp. `--tokenize [--quick]`: dataset preparation in MB/s.
 */
export async function bench(args: string[]): Promise<number> {
  if (args.includes('--gguf-1b')) return benchGguf1b(args);
  if (args.includes('--tokenize')) return benchTokenizing(args);
  const unknown = args.filter((a) => a !== '--quick' && a !== '--node-only');
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown.join(' ')}`);
  const quick = args.includes('--quick');
  const reps = quick ? 3 : 7;

  // Chromium first: once Dawn starts in this process it busy-polls a core, which would slow
  // SwiftShader in the browser (both share the machine's two cores).
  const browser = args.includes('--node-only') ? undefined : await runInChromium(reps, quick);
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const store = fileTuningStore();
  await restoreTuning(gpu, store);
  const node: { tile: string; ms: number }[] = [];
  const storage: string[][] = [];
  let svdReport: string;
  let nodeModel: ModelBenchRow;
  let cpuModel: ModelBenchRow;
  let nodeTraining: TrainBenchRow[];
  let merges: MergeBenchRow[];
  try {
    for (const c of REPRESENTATIVE_PROBLEMS) {
      const tile = await tuneMatmul(gpu, c);
      node.push({ tile: describeTile(tile), ms: await timeOurMatmul(gpu, c, reps) });
      process.stderr.write('.');
    }
    for (const c of WEIGHT_PROBLEMS) {
      await tuneMatmul(gpu, c);
      const row = [c.name];
      for (const dtype of ['f32', 'f16', 'bf16'] as const)
        row.push(gflops(c, await timeOurMatmul(gpu, c, reps, dtype)).toFixed(2));
      storage.push(row);
    }
    await persistTuning(gpu, store);
    svdReport = await benchSvd(gpu);
    const checkpoint = new Uint8Array(
      await readFile(new URL('../../public/models/stories260K.bin', import.meta.url)),
    );
    nodeModel = await benchStories(gpu, checkpoint, reps);
    cpuModel = await benchStoriesOnCpu(checkpoint, reps);
    nodeTraining = await benchTraining(gpu, checkpoint, quick, () => process.stderr.write('.'));
    merges = await benchMerges(gpu);
  } finally {
    gpu.destroy();
  }
  process.stderr.write('\n');

  const header = [
    'case',
    'ours, Chromium',
    'TF.js WebGPU, Chromium',
    'ours ÷ TF.js',
    'ours, Node (Dawn)',
    'tile (Chromium / Node)',
  ];
  const rows = REPRESENTATIVE_PROBLEMS.map((c, i) => {
    const b = browser?.rows[i];
    return [
      c.name,
      b ? b.oursGflops.toFixed(2) : '–',
      b ? b.tfjsGflops.toFixed(2) : '–',
      b ? `${(b.oursGflops / b.tfjsGflops).toFixed(1)}×` : '–',
      gflops(c, node[i].ms).toFixed(2),
      b ? `${b.tile} / ${node[i].tile}` : node[i].tile,
    ];
  });
  console.log(
    `matmul, GFLOP/s: median of ${reps} runs after warm-up and autotuning; each run times`,
  );
  console.log('a batch of products submitted together, up to a readback of the last result.');
  console.log(
    `Node adapter: ${adapterName(gpu.adapter)}${browser ? `; Chromium adapter: ${browser.adapter}` : ''}\n`,
  );
  console.log(markdownTable(header, rows));
  console.log(
    `\nmatmul with B (a frozen weight) stored in f32, f16 or bf16, Node (Dawn), GFLOP/s, median of ${reps}` +
      `\n(f16 ${gpu.has['shader-f16'] ? 'read natively' : 'unpacked from u32 pairs: no shader-f16 here'}; bf16 widened by a shift):\n`,
  );
  console.log(markdownTable(['case', 'B f32', 'B f16', 'B bf16'], storage));
  console.log(`\n${svdReport}`);
  const modelResults: [string, ModelBenchRow][] = [
    ['Node (Dawn)', nodeModel],
    ['Node, CPU reference (no WebGPU)', cpuModel],
  ];
  if (browser) modelResults.unshift(['Chromium', browser.model]);
  const modelRows = modelResults.map(([where, m]) => [
    where,
    m.prefillTokensPerSecond.toFixed(0),
    m.decodeTokensPerSecond.toFixed(1),
  ]);
  console.log(
    '\nstories260K forward pass (tokens/s; prefill of 256 tokens, 128 decode steps each read back):\n',
  );
  console.log(markdownTable(['where', 'prefill', 'decode'], modelRows));

  // The matmul peak of each runtime, measured above on the same device, is the yardstick.
  const nodePeak = Math.max(...REPRESENTATIVE_PROBLEMS.map((c, i) => gflops(c, node[i].ms)));
  const trainingResults: [string, TrainBenchRow[], number][] = [
    ['Node (Dawn)', nodeTraining, nodePeak],
  ];
  if (browser)
    trainingResults.unshift([
      'Chromium',
      browser.training,
      Math.max(...browser.rows.map((r) => r.oursGflops)),
    ]);
  const trainingRows = trainingResults.flatMap(([where, rows, peak]) =>
    rows.map((r) => {
      const achieved = r.gflopPerStep / (r.stepMs / 1000);
      return [
        r.model,
        where,
        String(r.tokensPerStep),
        r.stepMs.toFixed(0),
        r.tokensPerSecond.toFixed(1),
        r.gflopPerStep.toFixed(2),
        `${achieved.toFixed(2)} (${((100 * achieved) / peak).toFixed(0)} % of ${peak.toFixed(2)})`,
        formatBytes(r.weightBytes),
        formatBytes(r.gpuBytes),
      ];
    }),
  );
  console.log(
    '\nTraining: LoRA rank 16 on all linear modules, full steps (forward, backward, AdamW), after a',
    "warm-up step. GFLOP/s counts the step's multiply-adds (src/train/train.bench.ts, stepFlops) and",
    'compares them with the best matmul GFLOP/s measured above in the same runtime. GPU memory: what',
    'the buffer pool holds after the steps (weights, adapter, optimiser state, activations).\n',
  );
  console.log(
    markdownTable(
      [
        'model',
        'where',
        'tokens/step',
        'ms/step',
        'tokens/s',
        'GFLOP/step',
        'GFLOP/s (of matmul peak)',
        'weights',
        'GPU memory',
      ],
      trainingRows,
    ),
  );
  console.log(
    '\nMerging two adapters of Qwen2.5-0.5B shapes (q_proj and v_proj in 24 layers, ranks 6 and 12;',
    'density 0.3, output rank 12), in Node: the whole merge on the GPU after a warm-up merge, and',
    'on the CPU references the studio falls back to without WebGPU (src/merge/merge.bench.ts).\n',
  );
  console.log(
    markdownTable(
      ['method', 'modules', 'GPU, s', 'CPU, s'],
      merges.map((m) => [
        m.method,
        String(m.modules),
        m.gpuSeconds.toFixed(2),
        m.cpuSeconds.toFixed(2),
      ]),
    ),
  );
  return 0;
}

/**
 * `bench --gguf-1b [--peer PATH] [--quick]`: src/model/gguf-1b.bench.ts, with node-llama-cpp
 * from the package folder PATH (e.g. …/node_modules/node-llama-cpp) as the peer.
 */
async function benchGguf1b(args: string[]): Promise<number> {
  const rest = args.filter((a) => a !== '--gguf-1b' && a !== '--quick');
  const at = rest.indexOf('--peer');
  const peerPath = at >= 0 ? rest[at + 1] : undefined;
  if (at >= 0 && (peerPath === undefined || peerPath.startsWith('--')))
    throw new UsageError('--peer needs the node-llama-cpp package folder');
  const unknown = at >= 0 ? rest.filter((_, i) => i !== at && i !== at + 1) : rest;
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown.join(' ')}`);
  const reps = args.includes('--quick') ? 1 : 3;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  for (const type of FILE_TYPES) log(`${type}: ${modelFile(type, log)}`);

  // The peer before Dawn starts: Dawn busy-polls a core, one of the two llama.cpp is given.
  const peerRuns: EngineRun[] = [];
  let peerDescription: string | null = null;
  let peerNote = '';
  if (peerPath === undefined) peerNote = 'no --peer given';
  else {
    try {
      const peer = await loadPeer(peerPath);
      peerDescription = peer.description;
      log(`peer: ${peer.description}`);
      try {
        for (const type of FILE_TYPES) peerRuns.push(await peer.bench(type, reps, log));
      } finally {
        await peer.dispose();
      }
    } catch (e) {
      if (peerRuns.length > 0) throw e;
      peerNote = `node-llama-cpp could not be loaded from ${peerPath}: ${errorMessage(e)}`;
    }
  }
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const ours: EngineRun[] = [];
  try {
    for (const type of FILE_TYPES) {
      const probe = [...(peerRuns.find((p) => p.type === type)?.probe.keys() ?? [])];
      ours.push(await benchOurs(gpu, type, reps, probe, log));
    }
  } finally {
    gpu.destroy();
  }

  const s = LLAMA_1B_SHAPE;
  console.log(
    `A Llama-3.2-1B-shaped model (${s.numLayers} layers, hidden ${s.hiddenSize}, ${s.numHeads} heads,`,
    `${s.numKvHeads} KV heads, MLP ${s.intermediateSize}, vocabulary ${s.vocabSize}, tied embeddings;`,
    `random weights) from the same GGUF files in both engines: prefill of ${PREFILL} tokens, then`,
    `${DECODE} greedy decode steps, context ${CONTEXT}; median of ${reps} runs after a warm-up run.`,
    `\nOurs: ${adapterName(gpu.adapter)}, weights kept as the file stores them.`,
    `\nllama.cpp: ${peerDescription ?? `not measured (${peerNote})`}.`,
    '\nMemory: ours, the GPU buffer pool after the runs (what a WebGPU device must hold);',
    'llama.cpp, the buffers it reports (model, KV cache, compute, output).\n',
  );
  const rows = [
    ...ours.map((r) => ['ours, Node (Dawn)', r] as const),
    ...peerRuns.map((r) => ['llama.cpp, CPU', r] as const),
  ].map(([engine, r]) => [
    engine,
    r.type,
    r.prefillTokensPerSecond.toFixed(2),
    r.decodeTokensPerSecond.toFixed(2),
    formatBytes(r.weightBytes),
    formatBytes(r.kvBytes),
    formatBytes(r.totalBytes),
    r.loadSeconds.toFixed(1),
  ]);
  console.log(
    markdownTable(
      [
        'engine',
        'file',
        'prefill tok/s',
        'decode tok/s',
        'weights',
        `KV cache (${CONTEXT})`,
        'memory in all',
        'load, s',
      ],
      rows,
    ),
  );
  if (peerRuns.length > 0) console.log('');
  for (const r of ours) {
    const p = peerRuns.find((x) => x.type === r.type);
    if (p) console.log(agreement(r, p));
  }
  return 0;
}

/** Exact vs randomized SVD of a 512×512 matrix with a slowly decaying spectrum (σᵢ = 0.97^i). */
async function benchSvd(gpu: Gpu): Promise<string> {
  const n = 512;
  const rank = 16;
  const a = withSpectrum(n, n, decaying(n, 0.97), 1);
  const at = uploadMat(gpu, a);
  const rows: string[][] = [];
  try {
    let start = performance.now();
    const exact = await exactSvd(gpu, at);
    const exactMs = performance.now() - start;
    const best = await truncationError(gpu, exact, a, rank);
    rows.push(['exact (QR + Jacobi core)', exactMs.toFixed(0), best.toExponential(3), '—']);
    for (const niter of [0, 2, 4]) {
      start = performance.now();
      const approx = await randomizedSvd(gpu, at, { rank, niter });
      const ms = performance.now() - start;
      const error = await truncationError(gpu, approx, a, rank);
      rows.push([
        `randomized, niter ${niter}`,
        ms.toFixed(0),
        error.toExponential(3),
        `${((error / best - 1) * 100).toFixed(2)} %`,
      ]);
    }
  } finally {
    releaseTensor(gpu, at);
  }
  return [
    `SVD of a ${n}×${n} matrix with σᵢ = 0.97^i, top ${rank} triplets (Node, one run each; ms include`,
    'pipeline compilation). Error: ‖A − U·Σ·Vᵀ‖_F / ‖A‖_F of the rank-16 truncation.\n',
    markdownTable(['method', 'ms', 'error', 'excess over exact'], rows),
  ].join('\n');
}

async function truncationError(gpu: Gpu, svd: SvdResult, a: Mat, rank: number): Promise<number> {
  const u = columns(await readMat(gpu, svd.u), 0, rank);
  const v = columns(await readMat(gpu, svd.v), 0, rank);
  releaseTensor(gpu, svd.u, svd.v);
  for (let i = 0; i < u.rows; i++) for (let j = 0; j < rank; j++) u.data[i * rank + j] *= svd.s[j];
  const approx = multiply(u, transpose(v));
  return (
    frobenius(
      mat(
        a.rows,
        a.cols,
        a.data.map((x, i) => x - approx.data[i]),
      ),
    ) / frobenius(a)
  );
}

function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

async function runInChromium(reps: number, quick: boolean): Promise<BrowserBenchResults> {
  const { createServer } = await import('vite');
  const page = 'src/linalg/matmul.bench.html';
  const server = await createServer({
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0 },
    // Pre-bundle TF.js before the page loads, so Vite never reloads it mid-run.
    optimizeDeps: { entries: [page] },
  });
  await server.listen();
  const browser = await launchChromium();
  try {
    const { port } = server.httpServer!.address() as AddressInfo;
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${port}/${page}?reps=${reps}${quick ? '&quick' : ''}`);
    const handle = await tab.waitForFunction(() => window.benchResults, undefined, {
      timeout: 0,
      polling: 1000,
    });
    const result = (await handle.jsonValue())!;
    if ('error' in result) throw new Error(`in Chromium: ${result.error}`);
    return result;
  } finally {
    await browser.close();
    await server.close();
  }
}

/** `bench --tokenize [--quick]`: the Data panel's preparation speed, as a markdown table. */
function benchTokenizing(args: string[]): number {
  const unknown = args.filter((a) => a !== '--tokenize' && a !== '--quick');
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown.join(' ')}`);
  const quick = args.includes('--quick');
  const rows = benchTokenize(quick ? 1 : 5, quick ? 1 : 3);
  const lines = [
    '| tokenizer | engine | text | time | MB/s | tokens |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.tokenizer} | ${r.engine} | ${r.megabytes.toFixed(2)} MB | ${r.seconds.toFixed(2)} s | ${(r.megabytes / r.seconds).toFixed(2)} | ${r.tokens} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
