// A 1B-parameter model from GGUF files, on our engine and on llama.cpp (`lora-studio bench
// --gguf-1b`): Llama-3.2-1B's shape (hidden 2048, 16 layers, 32 heads, 8 KV heads of 64, MLP
// 8192, 128,256 tokens, tied embeddings, rope theta 500,000) with seeded random weights, written
// as F16, Q8_0 and Q4_K GGUF files (gguf/write-model.ts) that both engines load as any user's
// file. Ours keeps each file's weights as stored on the GPU (precision 'file': f16, or the
// blocks, decoded inside the matmuls); llama.cpp is node-llama-cpp's prebuilt CPU build, imported
// from a path given at run time (it is no dependency of ours: hundreds of megabytes).
//
// Both do the same work: a 64-token prompt in one batch (prefill), then 16 single-token steps
// (decode), each token the greedy choice of the logits before it, in a 512-position context, so
// that the KV caches are small and equal in length. The peer runs first: Dawn busy-polls a core
// once it starts in a process, which would take one of the two cores llama.cpp is given.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Gpu } from '../gpu/device.ts';
import { createGpuModel, type GpuModel } from './forward.ts';
import { loadGgufModel } from './gguf/load.ts';
import {
  writeRandomLlamaGguf,
  type LlamaGgufShape,
  type ModelFileType,
} from './gguf/write-model.ts';

/** Llama-3.2-1B's shape (its config.json; the vocabulary's last 256 ids are special tokens). */
export const LLAMA_1B_SHAPE: LlamaGgufShape = {
  hiddenSize: 2048,
  intermediateSize: 8192,
  numLayers: 16,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 64,
  vocabSize: 128256,
  specialTokens: 256,
  contextLength: 131072,
  ropeTheta: 500000,
  rmsNormEps: 1e-5,
};

export const FILE_TYPES: readonly ModelFileType[] = ['F16', 'Q8_0', 'Q4_K'];
export const CONTEXT = 512;
export const PREFILL = 64;
export const DECODE = 16;
const SEED = 1;
/** Part of the cached files' names: bump it when write-model.ts writes other files. */
const FILE_VERSION = 1;

/** Ordinary tokens spread over the vocabulary (no special ones, which some engines treat apart). */
const PROMPT = Array.from({ length: PREFILL }, (_, i) => 1000 + ((i * 7919) % 120000));

type Log = (line: string) => void;

/** The cached model file of a type, written first if missing (Q4_K: about 12 minutes). */
export function modelFile(type: ModelFileType, log: Log): string {
  const dir = join(tmpdir(), 'lora-studio-bench');
  const path = join(dir, `llama-1b-shape-seed${SEED}-v${FILE_VERSION}-${type}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  log(`writing ${path} (once; later runs reuse it)`);
  const start = performance.now();
  writeRandomLlamaGguf(path, LLAMA_1B_SHAPE, type, SEED, (_, done, total) => {
    if (done % 16 === 0 || done === total) log(`  ${done}/${total} tensors`);
  });
  log(`  written in ${((performance.now() - start) / 1000).toFixed(0)} s`);
  return path;
}

/**
 * A whole file's bytes. fs.readFile refuses files over 2 GiB (the F16 model is 2.5 GB), so it is
 * read in pieces into one array.
 */
function readWhole(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const bytes = new Uint8Array(fstatSync(fd).size);
    for (let at = 0; at < bytes.length;) {
      const n = readSync(fd, bytes, at, Math.min(1 << 30, bytes.length - at), at);
      if (n === 0) throw new Error(`${path}: ended after ${at} of ${bytes.length} bytes`);
      at += n;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

export interface EngineRun {
  type: ModelFileType;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Weights in the engine's memory (ours: on the GPU; llama.cpp: its model buffers). */
  weightBytes: number;
  kvBytes: number;
  /** Everything the engine holds for the model (ours: the GPU buffer pool). */
  totalBytes: number;
  loadSeconds: number;
  /** The prompt's greedy next token, then one per decode step. */
  tokens: number[];
  /** The logits after the prompt of `probe` tokens (llama.cpp's top ones), from the warm-up run. */
  probe: Map<number, number>;
}

interface Timed {
  prefillMs: number;
  decodeMs: number;
  tokens: number[];
}

/** Median of the timed runs' prefill and decode times, after a warm-up run. */
async function timeRuns(
  reps: number,
  run: () => Promise<Timed>,
): Promise<{ prefillTokensPerSecond: number; decodeTokensPerSecond: number; tokens: number[] }> {
  const runs: Timed[] = [];
  for (let r = 0; r < reps; r++) runs.push(await run());
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    prefillTokensPerSecond: (PREFILL * 1000) / median(runs.map((r) => r.prefillMs)),
    decodeTokensPerSecond: (DECODE * 1000) / median(runs.map((r) => r.decodeMs)),
    tokens: runs[0].tokens,
  };
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Reads and uploads a file; the host copies are garbage once this returns. */
function loadOurs(gpu: Gpu, path: string): GpuModel {
  const { config, weights } = loadGgufModel(readWhole(path), path);
  // The file says 131,072 positions (Llama 3.2's); the engine keeps a KV cache of the context run.
  return createGpuModel(gpu, { ...config, maxPositions: CONTEXT }, weights, 'file');
}

/** Our engine on one file: its weights kept as the file stores them. */
export async function benchOurs(
  gpu: Gpu,
  type: ModelFileType,
  reps: number,
  probeTokens: readonly number[],
  log: Log,
): Promise<EngineRun> {
  const path = modelFile(type, log);
  gpu.pool.trim();
  const start = performance.now();
  const model = loadOurs(gpu, path);
  const loadSeconds = (performance.now() - start) / 1000;
  const { numLayers, numKvHeads, headDim } = model.config;
  try {
    let probe = new Map<number, number>();
    const run = async (warmUp = false): Promise<Timed> => {
      let t0 = performance.now();
      const logits = await model.forward(PROMPT, 0);
      const prefillMs = performance.now() - t0;
      if (warmUp) probe = new Map(probeTokens.map((t) => [t, logits[t]]));
      const tokens = [argmax(logits)];
      t0 = performance.now();
      for (let i = 0; i < DECODE; i++)
        tokens.push(argmax(await model.forward([tokens[i]], PREFILL + i)));
      return { prefillMs, decodeMs: performance.now() - t0, tokens };
    };
    await run(true);
    log(`  ours, ${type}: warmed up`);
    const timed = await timeRuns(reps, run);
    return {
      type,
      ...timed,
      weightBytes: model.weightBytes,
      kvBytes: 2 * numLayers * CONTEXT * numKvHeads * headDim * 4,
      totalBytes: gpu.pool.allocatedBytes,
      loadSeconds,
      probe,
    };
  } finally {
    model.dispose();
  }
}

// The part of node-llama-cpp's API used here (its own types live in the package, not installed).
interface PeerSequence {
  clearHistory(): Promise<void>;
  controlledEvaluate(
    input: (number | [number, { generateNext: PeerGenerate }])[],
  ): Promise<({ next: { token?: number | null; logits?: Map<number, number> } } | undefined)[]>;
}
interface PeerGenerate {
  token: true;
  options: { temperature: 0 };
  logits?: { filter: { tokens: number[]; includeTop: number } };
}
interface PeerContext {
  getSequence(): PeerSequence;
  dispose(): Promise<void>;
}
interface PeerModel {
  createContext(options: {
    contextSize: number;
    batchSize: number;
    threads: number;
  }): Promise<PeerContext>;
  dispose(): Promise<void>;
}
interface PeerLlama {
  gpu: string | false;
  buildType: string;
  llamaCppRelease: { repo: string; release: string };
  systemInfo: string;
  loadModel(options: { modelPath: string; gpuLayers: 0 }): Promise<PeerModel>;
  dispose(): Promise<void>;
}
interface PeerModule {
  getLlama(options: {
    gpu: false;
    build: 'never';
    maxThreads: number;
    logLevel: 'log';
    logger: (level: string, message: string) => void;
  }): Promise<PeerLlama>;
}

export interface Peer {
  /** What it is, as it reports itself. */
  description: string;
  bench(type: ModelFileType, reps: number, log: Log): Promise<EngineRun>;
  dispose(): Promise<void>;
}

const THREADS = 2;

/** llama.cpp's report of a buffer it allocated, e.g. "CPU_REPACK model buffer size = 1.2 MiB". */
const BUFFER_LINE = /(\S+)\s+(model|KV|compute|output) buffer size =\s*([\d.]+) MiB/;

/**
 * node-llama-cpp (the package folder at `path`) on its CPU build with 2 threads, or a reason it
 * cannot be had.
 */
export async function loadPeer(path: string): Promise<Peer> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(join(path, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    main: string;
  };
  const module = (await import(pathToFileURL(join(path, pkg.main)).href)) as PeerModule;
  const logs: string[] = [];
  const llama = await module.getLlama({
    gpu: false,
    build: 'never',
    maxThreads: THREADS,
    // 'log' is one level chattier than 'info': it names the CPU backend loaded.
    logLevel: 'log',
    logger: (_, message) => logs.push(message),
  });
  if (llama.gpu !== false) throw new Error(`${pkg.name} chose the GPU backend ${llama.gpu}`);
  const backend = /loaded (CPU backend) from .*\/([^/\s]+)/.exec(logs.join(''));
  const description =
    `${pkg.name} ${pkg.version} (${llama.buildType} binaries), llama.cpp ${llama.llamaCppRelease.release}` +
    ` from ${llama.llamaCppRelease.repo}, CPU only, ${THREADS} threads` +
    (backend ? `, ${backend[1]} ${backend[2]}` : '') +
    `; ${llama.systemInfo.trim()}`;

  return {
    description,
    async bench(type, reps, log) {
      const path = modelFile(type, log);
      logs.length = 0;
      const start = performance.now();
      const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
      const context = await model.createContext({
        contextSize: CONTEXT,
        batchSize: CONTEXT,
        threads: THREADS,
      });
      const loadSeconds = (performance.now() - start) / 1000;
      try {
        const sequence = context.getSequence();
        let probe = new Map<number, number>();
        const run = async (warmUp = false): Promise<Timed> => {
          await sequence.clearHistory();
          // Only the warm-up run asks for logits (the top 5, to compare with ours).
          const generate: PeerGenerate = {
            token: true,
            options: { temperature: 0 },
            ...(warmUp && { logits: { filter: { tokens: [], includeTop: 5 } } }),
          };
          let t0 = performance.now();
          const out = await sequence.controlledEvaluate([
            ...PROMPT.slice(0, -1),
            [PROMPT[PREFILL - 1], { generateNext: generate }],
          ]);
          const prefillMs = performance.now() - t0;
          const last = out[PREFILL - 1]?.next;
          if (warmUp) probe = new Map(last?.logits);
          const tokens = [last?.token ?? -1];
          t0 = performance.now();
          for (let i = 0; i < DECODE; i++) {
            const step = await sequence.controlledEvaluate([
              [tokens[i], { generateNext: { token: true, options: { temperature: 0 } } }],
            ]);
            tokens.push(step[0]?.next.token ?? -1);
          }
          return { prefillMs, decodeMs: performance.now() - t0, tokens };
        };
        await run(true);
        log(`  llama.cpp, ${type}: warmed up`);
        const timed = await timeRuns(reps, run);
        const buffers = logs.flatMap((l) => {
          const m = BUFFER_LINE.exec(l);
          return m ? [{ kind: m[2], bytes: Number(m[3]) * 2 ** 20 }] : [];
        });
        const sum = (kinds: string[]) =>
          buffers.filter((b) => kinds.includes(b.kind)).reduce((s, b) => s + b.bytes, 0);
        return {
          type,
          ...timed,
          weightBytes: sum(['model']),
          kvBytes: sum(['KV']),
          totalBytes: sum(['model', 'KV', 'compute', 'output']),
          loadSeconds,
          probe,
        };
      } finally {
        await context.dispose();
        await model.dispose();
      }
    },
    dispose: () => llama.dispose(),
  };
}

/** How far two runs of one file agree: greedy tokens, and the logits of llama.cpp's top 5. */
export function agreement(ours: EngineRun, peer: EngineRun): string {
  const same = ours.tokens.filter((t, i) => t === peer.tokens[i]).length;
  const gaps = [...peer.probe].map(([t, v]) => Math.abs(v - (ours.probe.get(t) ?? NaN)));
  return (
    `${ours.type}: greedy tokens equal in ${same} of ${ours.tokens.length} steps; the logits of` +
    ` llama.cpp's top ${peer.probe.size} tokens after the prompt within ${Math.max(...gaps).toFixed(4)} of ours`
  );
}
