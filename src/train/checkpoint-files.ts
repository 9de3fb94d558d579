// A checkpoint is one file, `checkpoint.safetensors`: adapter factors (and the core between them,
// with its gain, where one trains), the variant's vectors such as DoRA's magnitudes and the optimiser moments
// (F32), with the step, settings and curves as JSON in its metadata. One file is replaced by one rename, so a run killed while checkpointing leaves
// the previous checkpoint or the new one, never step N's settings beside step N−1's tensors.
// `checkpoint.json` repeats the JSON for people and tools; only checkpoints written before the
// metadata held it are read from it. Nothing is pickled.
import { CORE_KEY, GAIN_KEY, type TrainedFactors } from '../adapters/peft.ts';
import { variantEntry } from '../adapters/variants.ts';
import { FormatError } from '../model/errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import { upgradeTrainConfig } from './run-store.ts';
import type { Checkpoint } from './trainer.ts';

export const CHECKPOINT_JSON = 'checkpoint.json';
export const CHECKPOINT_TENSORS = 'checkpoint.safetensors';

const FORMAT = 'lora-studio-checkpoint';
const META_KEY = 'checkpoint';

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
    if (f.core) vector(`factors.${path}.${CORE_KEY}`, f.core);
    if (f.gain) vector(`factors.${path}.${GAIN_KEY}`, f.gain);
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
  const json = JSON.stringify(meta, null, 1);
  // The JSON beside the tensors first: the tensors' rename is the checkpoint's commit.
  return new Map([
    [CHECKPOINT_JSON, new TextEncoder().encode(json)],
    [CHECKPOINT_TENSORS, writeSafetensors(tensors, { format: FORMAT, [META_KEY]: json })],
  ]);
}

/**
 * A checkpoint read back from its tensors file (`legacyJson`: checkpoint.json, needed only for
 * checkpoints written before the tensors' metadata carried the JSON).
 */
export function checkpointFromFiles(
  tensors: Uint8Array,
  legacyJson?: () => Uint8Array,
): Checkpoint {
  const st = readSafetensors(tensors, CHECKPOINT_TENSORS);
  const embedded = st.header.metadata[META_KEY] as string | undefined;
  const source = embedded === undefined ? CHECKPOINT_JSON : CHECKPOINT_TENSORS;
  let meta: Partial<CheckpointMeta>;
  try {
    const text = embedded ?? new TextDecoder().decode(legacyJson?.() ?? new Uint8Array());
    meta = JSON.parse(text) as Partial<CheckpointMeta>;
  } catch (e) {
    throw new FormatError(source, `does not hold a readable checkpoint (${String(e)})`);
  }
  if (
    meta.version !== 1 ||
    !meta.config ||
    !Array.isArray(meta.modules) ||
    typeof meta.momentCount !== 'number'
  )
    throw new FormatError(source, 'is not a LoRA Studio checkpoint (version 1)');
  const config = upgradeTrainConfig(meta.config);
  const { vectors } = variantEntry(config.lora.variant);
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
    const core = `factors.${path}.${CORE_KEY}`;
    if (st.header.tensors.has(core)) factors[path].core = read(core);
    const gain = `factors.${path}.${GAIN_KEY}`;
    if (st.header.tensors.has(gain)) factors[path].gain = read(gain);
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
