import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { adaptedCpuModel, adaptedGpuModel, type AdaptedModel } from '../adapters/adapted-model.ts';
import {
  COMPRESSED_FILE,
  COMPRESSION_TARGETS,
  CURVE_DENSITIES,
  compressAdapter,
  readCompressedFile,
  restoredFiles,
  type Compression,
  type CompressionTarget,
} from '../adapters/compeft.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import type { Gpu } from '../gpu/device.ts';
import { gpuCompute, type MergeCompute } from '../merge/compute.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import { FormatError } from '../model/errors.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { decodeUtf8Text } from '../train/data.ts';
import { meanLoss, runnerScorer, textSequences } from '../train/evaluate.ts';
import { adapterDirFiles } from './adapters.ts';
import { choiceOption, numberOption, parseOptions, UsageError } from './args.ts';
import { gpuOrCpu } from './device.ts';
import { writeFiles } from './files.ts';

/** The report written beside the compressed file. */
export const COMPRESSION_REPORT = 'compression.json';

/** Perplexity of the model with an adapter's files applied, on the eval text's windows. */
function perplexityJudge(
  model: AdaptedModel,
  tokens: readonly number[],
  name: string,
): (files: ReadonlyMap<string, Uint8Array>) => Promise<number> {
  const sequences = textSequences(tokens, model.config.maxPositions);
  return async (files) => {
    await model.apply([{ adapter: readPeftAdapter(files, name), weight: 1 }]);
    const report = await meanLoss(runnerScorer(model), sequences);
    if (!report) throw new RangeError('the eval text needs at least two tokens');
    return report.perplexity;
  };
}

/** A compressed adapter's path: its folder or the file itself. */
async function compressedPath(path: string): Promise<string> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  return info.isDirectory() ? join(path, COMPRESSED_FILE) : path;
}

/** `--decompress`: the plain PEFT adapter a compressed file stands for. */
async function decompress(path: string, out: string, compute: MergeCompute): Promise<number> {
  const file = await compressedPath(path);
  const bytes = await readFile(file).catch(() => {
    throw new FormatError(file, 'cannot be read');
  });
  const { adapter, alpha } = readCompressedFile(new Uint8Array(bytes));
  const files = await restoredFiles(adapter, alpha, compute);
  // What the reader refuses is refused here, before anything is written.
  readPeftAdapter(files, path);
  await writeFiles(out, files);
  console.log(JSON.stringify({ target: adapter.target, density: adapter.density, alpha, out }));
  return 0;
}

function summary(c: Compression, target: CompressionTarget, density: number, base?: number) {
  return {
    target,
    density,
    alpha: c.alpha,
    alpha_rule: c.alphaRule,
    bytes: c.file.length,
    ratio: c.ratio,
    delta_error: c.deltaError,
    ...(c.score !== undefined &&
      base !== undefined && {
        perplexity: c.score,
        perplexity_change: c.score / base - 1,
      }),
  };
}

/** `--curve`'s table: size and quality per target and density. */
function curveTable(rows: ReturnType<typeof summary>[], base?: number): string {
  const lines = [
    `| target | density | α | bytes | smaller | ‖ΔW − ΔW̃‖/‖ΔW‖ |${base === undefined ? '' : ' perplexity |'}`,
    `| --- | --- | --- | --- | --- | --- |${base === undefined ? '' : ' --- |'}`,
  ];
  for (const r of rows)
    lines.push(
      `| ${r.target} | ${r.density} | ${r.alpha.toFixed(2)} | ${r.bytes} | ${r.ratio.toFixed(1)}× | ${r.delta_error.toFixed(3)} |` +
        (r.perplexity === undefined
          ? ''
          : ` ${r.perplexity.toFixed(3)} (${(100 * (r.perplexity_change ?? 0)).toFixed(2)} %) |`),
    );
  return lines.join('\n') + '\n';
}

/**
 * `lora-studio compress ADAPTER_DIR --density D --out DIR [--target factors|delta] [--alpha A]
 * [--model MODEL --data FILE] [--curve]`, and `compress COMPRESSED --decompress --out DIR`.
 */
export async function compress(args: string[]): Promise<number> {
  const { values, flags, positionals } = parseOptions(args, {
    values: ['density', 'out', 'target', 'alpha', 'model', 'tokenizer', 'data', 'seed'],
    flags: ['decompress', 'curve', 'cpu'],
    positionals: true,
  });
  const out = values.get('out');
  if (positionals.length !== 1 || !out)
    throw new UsageError('give one adapter folder (or compressed file) and --out DIR');
  const [path] = positionals;
  const gpu: Gpu | null = await gpuOrCpu('compress', flags.has('cpu'));
  const compute = gpu ? gpuCompute(gpu) : cpuCompute;
  let model: AdaptedModel | null = null;
  try {
    if (flags.has('decompress')) return await decompress(path, out, compute);
    const target = choiceOption(
      values,
      'target',
      Object.keys(COMPRESSION_TARGETS) as CompressionTarget[],
      'factors',
    );
    const curve = flags.has('curve');
    if (!values.has('density') && !curve) throw new UsageError('--density D is required');
    const density = numberOption(values, 'density', 0.1);
    if (!(density > 0 && density <= 1))
      throw new UsageError(`--density must be in (0, 1], got ${values.get('density')}`);
    const alpha = values.has('alpha') ? numberOption(values, 'alpha', 1) : undefined;
    if (alpha !== undefined && !(alpha > 0)) throw new UsageError('--alpha must be above 0');
    const seed = numberOption(values, 'seed', 0);
    if (values.has('model') !== values.has('data'))
      throw new UsageError('--model MODEL and --data FILE go together (the eval text judges α)');
    const files = await adapterDirFiles(path);
    readPeftAdapter(files, path);

    let judge: ((files: ReadonlyMap<string, Uint8Array>) => Promise<number>) | undefined;
    let base: number | undefined;
    if (values.has('model')) {
      const loaded = await loadModelFromPath(values.get('model')!, values.get('tokenizer'));
      const data = values.get('data')!;
      const tokens = loaded.tokenizer.encode(decodeUtf8Text(await readFile(data), data));
      model = gpu
        ? adaptedGpuModel(gpu, loaded.config, loaded.weights)
        : adaptedCpuModel(loaded.config, loaded.weights);
      judge = perplexityJudge(model, tokens, path);
      base = await judge(files);
    }
    const run = (t: CompressionTarget, d: number) =>
      compressAdapter(files, path, { target: t, density: d, alpha, seed }, compute, judge);

    const chosen = await run(target, density);
    const report: Record<string, unknown> = {
      ...summary(chosen, target, density, base),
      ...(base !== undefined && { original_perplexity: base }),
    };
    const written = new Map([[COMPRESSED_FILE, chosen.file]]);
    if (curve) {
      const rows = [];
      for (const t of Object.keys(COMPRESSION_TARGETS) as CompressionTarget[])
        for (const d of CURVE_DENSITIES) {
          process.stderr.write(`\rcurve: ${t} at density ${d}   `);
          rows.push(summary(await run(t, d), t, d, base));
        }
      process.stderr.write('\n');
      report.curve = rows;
      written.set('curve.md', new TextEncoder().encode(curveTable(rows, base)));
    }
    written.set(
      COMPRESSION_REPORT,
      new TextEncoder().encode(JSON.stringify(report, null, 1) + '\n'),
    );
    await writeFiles(out, written);
    console.log(JSON.stringify({ ...report, curve: undefined, out }));
    return 0;
  } finally {
    model?.dispose();
    gpu?.destroy();
  }
}
