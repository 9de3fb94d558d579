// The extraction part of the Studio API: a LoRA from two checkpoints the user dropped (a base and
// its full fine-tune, HF folders or .gguf files), per module the truncated SVD of W_tuned − W_base
// (src/adapters/extract.ts), added to the library with its energy report; and the loaded model's
// loss on the user's text without and with an adapter, the check of the fine-tuning transfer
// when the loaded model is another version of the base. The checkpoints are opened lazily: an HF
// folder's tensors are read a pair at a time through File.slice, a GGUF file's dequantized one
// at a time from its bytes, so the two models never sit in memory in f32 at once.
import {
  architectureMismatch,
  EXTRACTION_REPORT,
  extractionReport,
  extractLora,
} from '../adapters/extract.ts';
import { describeEntry, type AdapterLibrary, type LibraryEntry } from '../adapters/library.ts';
import { peftFiles } from '../adapters/peft.ts';
import {
  misfit,
  readPeftAdapter,
  shapeMismatches,
  type PeftAdapter,
} from '../adapters/peft-read.ts';
import { errorMessage } from '../errors.ts';
import type { MergeCompute } from '../merge/compute.ts';
import { cpuEvaluator, evalSequences, gpuEvaluator, type Evaluator } from '../merge/report.ts';
import { modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import type { ModelFile } from '../model/hf-folder.ts';
import { openModelWeights } from '../model/load.ts';
import type { WeightSource } from '../model/weights.ts';
import { newId } from './adapters.ts';
import type {
  CheckpointFiles,
  ExtractedModuleReport,
  ExtractionOutcome,
  StudioApi,
} from './api.ts';
import type { LoadedModel } from './loaded.ts';

export interface ExtractingDeps {
  /** Where the SVDs run: the GPU, or the CPU references without WebGPU. */
  compute(): MergeCompute;
  loaded(): LoadedModel | undefined;
  library: AdapterLibrary;
  parsedAdapter(id: string): Promise<PeftAdapter>;
}

type ExtractingApi = Pick<StudioApi, 'extractAdapter' | 'cancelExtraction' | 'adapterEffect'>;

/** Eval windows of at most 128 tokens, at most 16 of them: as the merge report measures. */
const EVAL_WINDOW = 128;
const EVAL_SEQUENCES = 16;

/** Files that may be a PyTorch checkpoint (tokenizer .bin files are llama2.c's, not pickles). */
const PICKLE_NAME = /\.(bin|pt|pth|ckpt)$/i;
const TOKENIZER_BINS = ['tok512.bin', 'tokenizer.bin'];

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/**
 * torch.save's zip archive ("PK\3\4"), or a bare pickle: PROTO 2–5 followed by an opcode (a
 * llama2.c checkpoint starts with its int32 dim, whose third byte is 0 for any real model).
 */
const looksLikePickle = (b: Uint8Array) =>
  (b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) ||
  (b[0] === 0x80 && b[1] >= 2 && b[1] <= 5 && b[2] !== 0);

/** The checkpoint's files as the model loaders read them: a tensor at a time where they can. */
function modelFiles(checkpoint: CheckpointFiles): ModelFile[] {
  return checkpoint.files.map(({ path, file }) => ({
    name: path,
    bytes: async () => new Uint8Array(await file.arrayBuffer()),
    size: file.size,
    range: async (start: number, end: number) =>
      new Uint8Array(await file.slice(start, end).arrayBuffer()),
  }));
}

/** Refuses a checkpoint whose weights are only a PyTorch pickle, without opening it. */
async function refusePickle(checkpoint: CheckpointFiles, role: string): Promise<void> {
  const names = checkpoint.files.map((f) => basename(f.path).toLowerCase());
  if (names.some((n) => n.endsWith('.safetensors') || n.endsWith('.gguf'))) return;
  for (const { path, file } of checkpoint.files) {
    const name = basename(path);
    if (!PICKLE_NAME.test(name) || TOKENIZER_BINS.includes(name)) continue;
    const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
    if (looksLikePickle(head))
      throw new Error(
        `The ${role} ${checkpoint.name}: ${name} is a PyTorch pickle, which LoRA Studio never opens (unpickling can run code); save the model as safetensors (save_pretrained(out, safe_serialization=True)) or convert it to GGUF.`,
      );
  }
}

/** The checkpoint opened, or a one-line refusal naming which of the two it is. */
async function open(checkpoint: CheckpointFiles | undefined, role: string): Promise<WeightSource> {
  if (!checkpoint || checkpoint.files.length === 0)
    throw new Error(`Drop or pick the ${role} checkpoint first (an HF folder or a .gguf file).`);
  await refusePickle(checkpoint, role);
  try {
    return await openModelWeights(modelFiles(checkpoint), checkpoint.name);
  } catch (e) {
    // The loaders name the files they were given by the name given them: say it once.
    const message = oneLine(errorMessage(e));
    const own = `${checkpoint.name}: `;
    const problem = message.startsWith(own) ? message.slice(own.length) : message;
    throw new Error(`The ${role} ${checkpoint.name}: ${problem}`, { cause: e });
  }
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, '; ');

/** Each extracted module's place in the layer × module grid, by path. */
function gridPlaces(config: ModelConfig): Map<string, { layer: number | null; module: string }> {
  const { arch } = config;
  const places = new Map<string, { layer: number | null; module: string }>();
  for (let l = 0; l < config.numLayers; l++)
    for (const m of arch.modules) places.set(modulePath(arch, l, m), { layer: l, module: m.name });
  places.set(arch.embedding, { layer: null, module: arch.embedding.split('.').pop()! });
  return places;
}

/** "rank 8", or "rank ≤ 12 (90 % energy)" where the rank followed an energy share. */
function rankText(rule: number | { energy: number; max: number }, rank: number): string {
  return typeof rule === 'number'
    ? `rank ${rank}`
    : `rank ≤ ${rank} (${+(rule.energy * 100).toPrecision(4)} % energy)`;
}

export function createExtractingApi(deps: ExtractingDeps): ExtractingApi {
  let running = false;
  let cancelRequested = false;

  return {
    async extractAdapter(baseFiles, tunedFiles, settings, onProgress) {
      if (running) throw new Error('An extraction is already running.');
      running = true;
      cancelRequested = false;
      try {
        const base = await open(baseFiles, 'base');
        const tuned = await open(tunedFiles, 'tuned model');
        const mismatch = architectureMismatch(base.config, tuned.config);
        if (mismatch)
          throw new Error(
            `${tunedFiles.name} is not ${baseFiles.name}'s architecture (${mismatch}): extraction needs a base and a fine-tune of it.`,
          );
        const baseModel = base.hubId ?? baseFiles.name;
        const extraction = await extractLora(base, tuned, deps.compute(), {
          rule: settings.rule,
          svEpsilon: 0,
          targets: settings.targets,
          embeddings: settings.embeddings,
          head: settings.head,
          seed: 0,
          baseModel,
          onProgress: (done, total) => {
            if (cancelRequested) throw new Error('Cancelled.');
            onProgress?.(done, total);
          },
        }).catch((e: unknown) => {
          // extractLora names the tuned model as the CLI's flag does.
          if (e instanceof FormatError && e.file === '--tuned')
            throw new Error(`${tunedFiles.name} ${e.message.slice(e.file.length + 2)}.`, {
              cause: e,
            });
          throw e;
        });
        const { adapter } = extraction;
        const name = settings.name?.trim() || `${tunedFiles.name} − ${baseFiles.name}`;
        const files = peftFiles(adapter);
        files.set(EXTRACTION_REPORT, extractionReport(extraction));
        const changed = extraction.notCarried.length;
        const entry: LibraryEntry = {
          id: newId('extracted'),
          name,
          baseModel,
          createdAt: Date.now(),
          origin: `extracted: ${rankText(settings.rule, adapter.rank)} from ${tunedFiles.name} − ${baseFiles.name}`,
          files: Object.fromEntries(files),
          details: readPeftAdapter(files, name).details,
          ...(changed > 0 && {
            warnings: [
              `the fine-tune also changed ${changed} weight${changed === 1 ? '' : 's'} that the adapter does not carry (${EXTRACTION_REPORT} lists them)`,
            ],
          }),
        };
        await deps.library.add(entry);
        const places = gridPlaces(base.config);
        const modules: ExtractedModuleReport[] = extraction.modules.map((m) => ({
          ...m,
          ...(places.get(m.path) ?? { layer: null, module: m.path }),
        }));
        const present = new Set(modules.map((m) => m.module));
        const { arch } = base.config;
        return {
          item: describeEntry(entry),
          base: baseFiles.name,
          tuned: tunedFiles.name,
          numLayers: base.config.numLayers,
          moduleTypes: [
            ...arch.modules.map((m) => m.name).filter((m) => present.has(m)),
            ...modules.filter((m) => m.layer === null).map((m) => m.module),
          ],
          modules,
          energy: extraction.energy,
          saved: (adapter.wholeWeights ?? []).map((w) => w.name),
          notCarried: extraction.notCarried,
        } satisfies ExtractionOutcome;
      } finally {
        running = false;
      }
    },

    cancelExtraction() {
      if (running) cancelRequested = true;
      return Promise.resolve();
    },

    async adapterEffect(id, text, fileName = 'text.txt') {
      const loaded = deps.loaded();
      if (!loaded) throw new Error('Load a model first: the losses are measured with it.');
      const adapter = await deps.parsedAdapter(id);
      const { model, tokenizer } = loaded;
      const problems = shapeMismatches(adapter, model.config);
      if (problems.length > 0)
        throw new Error(
          `${adapter.name} cannot be measured on ${loaded.name}: it ${oneLine(misfit(problems, 3))}`,
        );
      if (text.trim() === '') throw new Error('There is no text to measure on.');
      const seqLen = Math.min(EVAL_WINDOW, model.config.maxPositions);
      const windows = evalSequences(tokenizer, text, fileName, seqLen).slice(0, EVAL_SEQUENCES);
      if (windows.length === 0)
        throw new Error('The text is too short to measure: it needs two tokens or more.');
      const evaluate: Evaluator =
        model.where === 'gpu'
          ? gpuEvaluator(model.gpu, model.model.base)
          : cpuEvaluator(model.config, model.weights);
      const [before] = await evaluate([], [windows]);
      const [after] = await evaluate([{ adapter, weight: 1 }], [windows]);
      const cell = (loss: number | null) => ({
        loss: loss ?? NaN,
        perplexity: Math.exp(loss ?? NaN),
      });
      return {
        model: loaded.name,
        adapter: adapter.name,
        tokens: windows.reduce((n, w) => n + w.target.filter((t) => t >= 0).length, 0),
        before: cell(before),
        after: cell(after),
      };
    },
  };
}
