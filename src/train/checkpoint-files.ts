// A checkpoint as two files: `checkpoint.json` (step, settings, curves) and
// `checkpoint.safetensors` (adapter factors, the variant's vectors such as DoRA's magnitudes, and
// optimiser moments, F32). Nothing is pickled; the CLI writes these to a folder and the studio can
// offer them for download.
import type { TrainedFactors } from '../adapters/peft.ts';
import { variantEntry } from '../adapters/variants.ts';
import { FormatError } from '../model/errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import { upgradeTrainConfig } from './run-store.ts';
import type { Checkpoint } from './trainer.ts';

export const CHECKPOINT_JSON = 'checkpoint.json';
export const CHECKPOINT_TENSORS = 'checkpoint.safetensors';

type CheckpointMeta = Omit<Checkpoint, 'factors' | 'moments'> & {
  modules: string[];
  momentCount: number;
};

export function checkpointFiles(c: Checkpoint): Map<string, Uint8Array> {
  const { factors, moments, ...rest } = c;
  const { vectors } = variantEntry(c.config.lora.variant);
  const tensors: TensorToWrite[] = [];
  const vector = (name: string, data: Float32Array) =>
    tensors.push({ name, shape: [data.length], data });
  for (const [path, f] of Object.entries(factors)) {
    vector(`factors.${path}.lora_A`, f.a);
    vector(`factors.${path}.lora_B`, f.b);
    for (const v of vectors) {
      const data = f[v.field];
      if (!data) throw new Error(`no ${v.description} for ${path} to checkpoint`);
      vector(`factors.${path}.${v.key}`, data);
    }
  }
  moments.forEach((s, i) => {
    vector(`moments.${i}.m`, s.m);
    vector(`moments.${i}.v`, s.v);
  });
  const meta: CheckpointMeta = {
    ...rest,
    modules: Object.keys(factors),
    momentCount: moments.length,
  };
  return new Map([
    [CHECKPOINT_JSON, new TextEncoder().encode(JSON.stringify(meta, null, 1))],
    [CHECKPOINT_TENSORS, writeSafetensors(tensors, { format: 'lora-studio-checkpoint' })],
  ]);
}

export function checkpointFromFiles(json: Uint8Array, tensors: Uint8Array): Checkpoint {
  let meta: Partial<CheckpointMeta>;
  try {
    meta = JSON.parse(new TextDecoder().decode(json)) as Partial<CheckpointMeta>;
  } catch (e) {
    throw new FormatError(CHECKPOINT_JSON, `is not valid JSON (${String(e)})`);
  }
  if (
    meta.version !== 1 ||
    !meta.config ||
    !Array.isArray(meta.modules) ||
    typeof meta.momentCount !== 'number'
  )
    throw new FormatError(CHECKPOINT_JSON, 'is not a LoRA Studio checkpoint (version 1)');
  const config = upgradeTrainConfig(meta.config);
  const { vectors } = variantEntry(config.lora.variant);
  const st = readSafetensors(tensors, CHECKPOINT_TENSORS);
  const read = (name: string) => {
    if (!st.header.tensors.has(name))
      throw new FormatError(
        CHECKPOINT_TENSORS,
        `lacks ${name}: the two files do not belong together`,
      );
    return st.read(name);
  };
  const factors: Record<string, TrainedFactors> = {};
  for (const path of meta.modules) {
    factors[path] = { a: read(`factors.${path}.lora_A`), b: read(`factors.${path}.lora_B`) };
    for (const v of vectors) factors[path][v.field] = read(`factors.${path}.${v.key}`);
  }
  const moments = Array.from({ length: meta.momentCount }, (_, i) => ({
    m: read(`moments.${i}.m`),
    v: read(`moments.${i}.v`),
  }));
  const checkpoint = { ...meta, config, factors, moments } as Checkpoint & Partial<CheckpointMeta>;
  delete checkpoint.modules;
  delete checkpoint.momentCount;
  return checkpoint;
}
