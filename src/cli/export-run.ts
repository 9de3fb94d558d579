import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../errors.ts';
import { exportRunFiles, spellRun } from '../handoff/export.ts';
import { handoffRun } from '../handoff/run.ts';
import { TARGET_NAMES } from '../handoff/settings.ts';
import { FormatError } from '../model/errors.ts';
import {
  CHECKPOINT_JSON,
  CHECKPOINT_TENSORS,
  checkpointFromFiles,
} from '../train/checkpoint-files.ts';
import { decodeUtf8Text } from '../train/data.ts';
import type { Checkpoint } from '../train/trainer.ts';
import { choiceOption, parseOptions, UsageError } from './args.ts';
import { EXIT } from './exit.ts';
import { writeFiles } from './files.ts';
import { sha256 } from './resume.ts';

const USAGE = `usage: export-run RUN_DIR --to ${TARGET_NAMES.join('|')} --out DIR --data FILE [--model HUB_ID_OR_PATH]`;

/**
 * The checkpoint of a run folder (what `train --out` writes: DIR/checkpoint/), or of the
 * checkpoint folder itself; every way it can fail is the input's (FormatError).
 */
async function readCheckpoint(runDir: string): Promise<Checkpoint> {
  const info = await stat(runDir).catch(() => null);
  if (!info) throw new FormatError(runDir, 'does not exist');
  if (!info.isDirectory())
    throw new FormatError(
      runDir,
      'is not a folder: give the folder `lora-studio train --out` wrote',
    );
  for (const dir of [join(runDir, 'checkpoint'), runDir]) {
    const path = join(dir, CHECKPOINT_TENSORS);
    const tensors = await readFile(path).catch(() => null);
    if (!tensors) continue;
    try {
      return checkpointFromFiles(new Uint8Array(tensors), () =>
        readFileSync(join(dir, CHECKPOINT_JSON)),
      );
    } catch (e) {
      throw new FormatError(path, `is not a readable checkpoint (${errorMessage(e)})`);
    }
  }
  throw new FormatError(
    runDir,
    `holds no checkpoint (checkpoint/${CHECKPOINT_TENSORS}): give the folder \`lora-studio train --out\` wrote`,
  );
}

/** adapter_config.json's base_model_name_or_path beside the checkpoint, where there is one. */
async function peftBaseModel(runDir: string): Promise<string | undefined> {
  try {
    const config = JSON.parse(await readFile(join(runDir, 'adapter_config.json'), 'utf8')) as {
      base_model_name_or_path?: unknown;
    };
    const id = config.base_model_name_or_path;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined; // optional: the checkpoint alone says everything else
  }
}

/**
 * The data file the run was trained on, as text: the CLI's runs keep only its hash, so --data
 * names it, and it must be the same bytes when the checkpoint records them.
 */
async function runData(
  checkpoint: Checkpoint,
  dataPath: string | undefined,
): Promise<{ content: string; fileName: string }> {
  const recorded = checkpoint.data;
  if (!dataPath)
    throw new UsageError(
      `--data FILE is required: the run keeps only its data's hash${recorded ? `; give the file it was trained on (${recorded.file})` : ''}`,
    );
  const bytes = new Uint8Array(await readFile(dataPath));
  if (recorded && sha256(bytes) !== recorded.sha256)
    throw new UsageError(
      `--data: ${dataPath} is not the data the run was trained on (${recorded.file}, sha256 ${recorded.sha256.slice(0, 12)}…)`,
    );
  return { content: decodeUtf8Text(bytes, dataPath), fileName: basename(dataPath) };
}

/** Writes files whose names may hold folders (data/train.jsonl) under `out`. */
async function writeTree(out: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const byDir = new Map<string, Map<string, Uint8Array>>();
  for (const [name, bytes] of files) {
    const dir = dirname(name);
    if (!byDir.has(dir)) byDir.set(dir, new Map());
    byDir.get(dir)!.set(basename(name), bytes);
  }
  for (const [dir, inDir] of byDir) await writeFiles(join(out, dir), inDir);
}

/**
 * `lora-studio export-run RUN_DIR --to trl|axolotl|llamafactory --out DIR`: the run that `train
 * --out RUN_DIR` saved, as a folder another engine trains from unchanged (src/handoff): the data
 * as JSONL, the target's files and a README saying what the target cannot express. JSON summary
 * on stdout.
 */
export async function exportRun(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    values: ['to', 'out', 'model', 'data'],
    positionals: true,
  });
  if (positionals.length !== 1) throw new UsageError(`give one run folder; ${USAGE}`);
  const out = values.get('out');
  if (!values.has('to') || !out) throw new UsageError(`--to and --out are required; ${USAGE}`);
  const target = choiceOption(values, 'to', TARGET_NAMES, 'trl');
  const [runDir] = positionals;
  const checkpoint = await readCheckpoint(runDir);
  const data = await runData(checkpoint, values.get('data'));
  const run = handoffRun(checkpoint, data, {
    model: values.get('model'),
    peftBaseModel: await peftBaseModel(runDir),
  });
  const files = exportRunFiles(run, target);
  await writeTree(out, files);
  const { settings } = spellRun(run, target);
  console.log(
    JSON.stringify({
      target,
      out,
      model: run.modelId,
      steps: run.config.train.steps,
      examples: { train: run.dataset.train.length, validation: run.dataset.validation.length },
      files: [...files.keys()],
      not_expressed: settings.flatMap(({ setting, spelled }) =>
        spelled.lost ? [{ setting: setting.name, why: spelled.lost }] : [],
      ),
    }),
  );
  return EXIT.ok;
}
