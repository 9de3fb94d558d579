import { basename } from 'node:path';
import {
  EMBEDDING_CHOICES,
  EXTRACTION_REPORT,
  extractionReport,
  extractLora,
  HEAD_CHOICES,
} from '../adapters/extract.ts';
import { peftFiles } from '../adapters/peft.ts';
import { TARGET_PRESETS } from '../adapters/config.ts';
import { gpuCompute } from '../merge/compute.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import type { OutputRank } from '../merge/spec.ts';
import { openWeightsFromPath } from '../model/load-node.ts';
import { choiceOption, numberOption, parseOptions, UsageError } from './args.ts';
import { gpuOrCpu } from './device.ts';
import { writeFiles } from './files.ts';

/** --rank R, or --energy E with --max-rank N (default 128): exactly one of --rank and --energy. */
function rankRule(values: Map<string, string>): OutputRank {
  const hasRank = values.has('rank');
  if (hasRank === values.has('energy'))
    throw new UsageError('give one of --rank R and --energy E (a share of ‖ΔW‖² in (0, 1])');
  if (hasRank) {
    const rank = numberOption(values, 'rank', 0);
    if (!Number.isInteger(rank) || rank < 1)
      throw new UsageError(`--rank must be a whole number ≥ 1, got ${values.get('rank')}`);
    return rank;
  }
  const energy = numberOption(values, 'energy', 0);
  if (!(energy > 0 && energy <= 1))
    throw new UsageError(`--energy must be in (0, 1], got ${energy}`);
  const max = numberOption(values, 'max-rank', 128);
  if (!Number.isInteger(max) || max < 1)
    throw new UsageError(`--max-rank must be a whole number ≥ 1, got ${values.get('max-rank')}`);
  return { energy, max };
}

/**
 * `lora-studio extract --base MODEL --tuned MODEL (--rank R | --energy E [--max-rank N]) --out DIR`:
 * the LoRA that best stands for W_tuned − W_base per module (truncated SVD), as a PEFT adapter
 * for the base, with extraction.json (rank, ‖ΔW‖ and energy kept per module; weights changed
 * but not carried); JSON summary on stdout.
 */
export async function extract(args: string[]): Promise<number> {
  const { values, flags } = parseOptions(args, {
    values: [
      'base',
      'tuned',
      'rank',
      'energy',
      'max-rank',
      'sv-epsilon',
      'targets',
      'embeddings',
      'head',
      'seed',
      'base-id',
      'out',
    ],
    flags: ['cpu'],
  });
  const basePath = values.get('base');
  const tunedPath = values.get('tuned');
  const out = values.get('out');
  if (!basePath || !tunedPath || !out)
    throw new UsageError('--base MODEL, --tuned MODEL and --out DIR are required');
  const rule = rankRule(values);
  const svEpsilon = numberOption(values, 'sv-epsilon', 0);
  if (!(svEpsilon >= 0)) throw new UsageError(`--sv-epsilon must be ≥ 0, got ${svEpsilon}`);
  const targets = values
    .get('targets')
    ?.split(',')
    .map((s) => s.trim()) ?? [...TARGET_PRESETS['all-linear']];
  const base = await openWeightsFromPath(basePath);
  const tuned = await openWeightsFromPath(tunedPath);
  const gpu = await gpuOrCpu('extract', flags.has('cpu'));
  try {
    const extraction = await extractLora(base, tuned, gpu ? gpuCompute(gpu) : cpuCompute, {
      rule,
      svEpsilon,
      targets,
      embeddings: choiceOption(values, 'embeddings', EMBEDDING_CHOICES, 'skip'),
      head: choiceOption(values, 'head', HEAD_CHOICES, 'skip'),
      seed: numberOption(values, 'seed', 0),
      baseModel: values.get('base-id') ?? base.hubId ?? basename(basePath),
      onProgress: (done, total) => process.stderr.write(`\rextracting ${done}/${total} weights`),
    });
    process.stderr.write('\n');
    const files = peftFiles(extraction.adapter);
    files.set(EXTRACTION_REPORT, extractionReport(extraction));
    await writeFiles(out, files);
    console.log(
      JSON.stringify({
        rank: extraction.adapter.rank,
        modules: extraction.adapter.modules.length,
        energy: extraction.energy,
        modules_to_save: extraction.adapter.wholeWeights?.map((w) => w.name) ?? [],
        not_carried: extraction.notCarried.length,
        out,
      }),
    );
    return 0;
  } finally {
    gpu?.destroy();
  }
}
