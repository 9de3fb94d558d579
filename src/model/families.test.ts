// Every family against the float64 logits of an independent implementation
// (fixtures/models/arch/, see fixtures/MANIFEST.md): the CPU reference, the GPU forward in
// prefill (every position at once) and in decode (one token at a time over the KV cache), each
// with and without the family's PEFT LoRA applied at run time and composed into the weights;
// and a short training run per family on English text in the family's tokenizer.
import { beforeAll, describe, expect, it } from 'vitest';
import { composeWeights } from '../adapters/compose.ts';
import { adapterTerms, readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { FIXTURES, fixtureJson } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { folderFiles } from './files-node.ts';
import { ReferenceModel, type CpuTerm } from './cpu/reference.ts';
import { createGpuModel, createRunner } from './forward.ts';
import { hfFolderFiles } from './hf-export.ts';
import { loadHfFolder } from './hf-folder.ts';
import { loadModelFiles, type LoadedModelFiles } from './load.ts';
import type { Transformer } from './transformer.ts';
import { styleCorpus } from '../studies/style-corpus.ts';
import { prepareDataset } from '../train/data.ts';
import { batchedScorer, meanLoss } from '../train/evaluate.ts';
import { DEFAULT_SETTINGS, train } from '../train/trainer.ts';

const gpu = useGpu();

interface Expected {
  input_ids: number[][];
  shape: [number, number, number];
  logits: number[][][];
  logits_last_row: number[][];
}

/** Fixture folder → the folder whose expected logits it shares. */
const FIXTURES_BY_FAMILY: Record<string, string> = {
  llama: 'llama',
  'llama-linear': 'llama-linear',
  llama3: 'llama3',
  qwen3: 'qwen3',
  'qwen3-bf16': 'qwen3',
  gemma3_text: 'gemma3_text',
  smollm3: 'smollm3',
  phi3: 'phi3',
  gpt2: 'gpt2',
};

/** max |a − e| over the rows compared, over max |e| (logits are of order 15–20). */
function relativeError(rows: ArrayLike<number>[], expected: number[][]): number {
  let worst = 0;
  let scale = 0;
  expected.forEach((row, r) => {
    row.forEach((e, i) => {
      worst = Math.max(worst, Math.abs(rows[r][i] - e));
      scale = Math.max(scale, Math.abs(e));
    });
  });
  return worst / scale;
}

/** The rows expected.json holds in full: the first 8 positions and the last. */
function comparedRows(all: ArrayLike<number>[], expected: Expected, b: number): number {
  const T = expected.shape[1];
  return Math.max(
    relativeError(all.slice(0, expected.logits[b].length), expected.logits[b]),
    relativeError([all[T - 1]], [expected.logits_last_row[b]]),
  );
}

async function adapterOf(dir: string): Promise<PeftAdapter> {
  const files = await folderFiles(`${FIXTURES}models/arch/${dir}/lora`);
  return readPeftAdapter(
    new Map(
      await Promise.all(
        files.map(async (f) => [f.name.split('/').pop()!, await f.bytes()] as const),
      ),
    ),
    'lora',
  );
}

function cpuTerms(adapter: PeftAdapter): Map<string, CpuTerm> {
  return new Map(
    [...adapter.modules].map(([path, m]) => [
      path,
      { a: Float64Array.from(m.a), b: Float64Array.from(m.b), rank: m.rank, scale: m.scale },
    ]),
  );
}

describe.each(Object.entries(FIXTURES_BY_FAMILY))('%s', (dir, expectedDir) => {
  let model: LoadedModelFiles;
  let adapter: PeftAdapter;
  const expected = (lora: boolean) =>
    fixtureJson(
      `models/arch/${expectedDir}/${lora ? 'expected_with_lora' : 'expected'}.json`,
    ) as Expected;

  beforeAll(async () => {
    model = await loadModelFiles(await folderFiles(`${FIXTURES}models/arch/${dir}`), dir);
    adapter = await adapterOf(dir);
  });

  it('the f64 CPU reference matches, with and without the LoRA', () => {
    for (const lora of [false, true]) {
      const e = expected(lora);
      const reference = new ReferenceModel(model.config, model.weights, {
        terms: lora ? cpuTerms(adapter) : undefined,
      });
      e.input_ids.forEach((ids, b) => {
        reference.reset();
        expect(comparedRows(reference.run(ids), e, b), `lora ${lora} row ${b}`).toBeLessThan(1e-7);
      });
    }
  });

  it('exports as an HF folder in its own layout that loads back to the same model', async () => {
    const files = hfFolderFiles(model.config, model.weights);
    const again = await loadHfFolder(
      [...files].map(([name, bytes]) => ({ name, bytes: () => Promise.resolve(bytes) })),
    );
    expect(again.config.arch).toEqual(model.config.arch);
    expect([...again.weights.keys()].sort()).toEqual([...model.weights.keys()].sort());
    for (const [name, t] of model.weights)
      expect(again.weights.get(name)?.data, name).toEqual(t.data);
  });

  it('the LoRA composed into the weights gives the same logits', () => {
    const composed = composeWeights(model.config, model.weights, [{ adapter, weight: 1 }]);
    const e = expected(true);
    const reference = new ReferenceModel(composed.config, composed.weights);
    expect(comparedRows(reference.run(e.input_ids[0]), e, 0)).toBeLessThan(1e-5);
  });

  // One training run per family: llama-linear and qwen3-bf16 train as llama and qwen3 do.
  it.skipIf(dir === 'llama-linear' || dir === 'qwen3-bf16')(
    'a LoRA on every linear module lowers the loss on text in its tokenizer, and its PEFT files give the same logits',
    async () => {
      const g = gpu();
      const data = prepareDataset(styleCorpus(30, 1), 'style.txt', model.tokenizer, {
        seqLen: 24,
        validationFraction: 0.2,
        seed: 0,
      });
      const gpuModel = createGpuModel(g, model.config, model.weights);
      try {
        const scorer = (view: Transformer) => batchedScorer(g, view, 4);
        const before = (await meanLoss(scorer(gpuModel.transformer), data.validation))!.loss;
        const result = await train({
          gpu: g,
          model: gpuModel,
          baseModel: dir,
          data,
          config: {
            lora: {
              rank: 4,
              alpha: 8,
              rslora: false,
              targets: ['all-linear'],
              dropout: 0,
              init: 'lora',
            },
            train: {
              ...DEFAULT_SETTINGS,
              steps: 20,
              lr: 3e-2,
              batchSize: 4,
              warmupSteps: 1,
              evalEvery: 0,
              checkpointEvery: 0,
            },
          },
        });
        try {
          const view = result.adapter.view(gpuModel.transformer);
          const after = (await meanLoss(scorer(view), data.validation))!.loss;
          expect(result.status).toBe('done');
          expect(after, `validation loss ${before.toFixed(3)} → ${after.toFixed(3)}`).toBeLessThan(
            0.8 * before,
          );
          // The exported adapter, read back and applied at run time, is the trained one.
          const { files } = await result.adapter.peftFiles(dir, model.config);
          const exported = readPeftAdapter(files, 'trained');
          expect(exported.details.targets).toEqual(model.config.arch.modules.map((m) => m.name));
          const ids = expected(false).input_ids[0];
          const trained = await createRunner(g, view).forwardAll(ids, 0);
          const applied = await adapterTerms(g, gpuModel.base, [{ adapter: exported, weight: 1 }]);
          gpuModel.setAdapters(applied.terms);
          const reread = await gpuModel.forwardAll(ids, 0);
          releaseTensor(g, ...applied.tensors);
          const scale = Math.max(...trained.map(Math.abs));
          expect(Math.max(...reread.map((v, i) => Math.abs(v - trained[i]))) / scale).toBeLessThan(
            1e-5,
          );
        } finally {
          result.adapter.dispose();
        }
      } finally {
        gpuModel.dispose();
      }
    },
    300_000,
  );

  it('the GPU forward matches in prefill and decode, with and without the LoRA', async () => {
    const g = gpu();
    const gpuModel = createGpuModel(g, model.config, model.weights);
    const applied = await adapterTerms(g, gpuModel.base, [{ adapter, weight: 1 }]);
    try {
      for (const lora of [false, true]) {
        gpuModel.setAdapters(lora ? applied.terms : new Map());
        const e = expected(lora);
        const [T, V] = [e.shape[1], e.shape[2]];
        for (const [b, ids] of e.input_ids.entries()) {
          const all = await gpuModel.forwardAll(ids, 0);
          const prefill = Array.from({ length: T }, (_, t) => all.subarray(t * V, (t + 1) * V));
          expect(comparedRows(prefill, e, b), `prefill lora ${lora} row ${b}`).toBeLessThan(1e-5);
          if (b > 0) continue;
          // Decode: a 3-token prompt, then one token at a time over the cache.
          const decoded = [...(await gpuModel.forwardAll(ids.slice(0, 3), 0)).values()];
          const steps: Float32Array[] = [0, 1, 2].map((t) =>
            Float32Array.from(decoded.slice(t * V, (t + 1) * V)),
          );
          for (let t = 3; t < T; t++) steps.push(await gpuModel.forward([ids[t]], t));
          expect(comparedRows(steps, e, b), `decode lora ${lora}`).toBeLessThan(1e-5);
        }
      }
    } finally {
      releaseTensor(g, ...applied.tensors);
      gpuModel.dispose();
    }
  });
});
