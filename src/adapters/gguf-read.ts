// A llama.cpp GGUF LoRA (convert_lora_to_gguf.py's, or our export: src/adapters/gguf.ts) read into
// a PeftAdapter for a given base model: the inverse of the export, family by family.
// - The file must say general.type "adapter" and adapter.type "lora" (llama-adapter.cpp refuses
//   anything else), and general.architecture must be the base model's family's llama.cpp name
//   (llama.cpp: "model arch and LoRA arch mismatch").
// - Tensors are `<base tensor>.lora_a` (ggml ne [in, r]) and `.lora_b` (ne [r, out]); the base
//   tensor name is the family's (families/*.ts `gguf.tensors`) in `blk.N.<tensor>.weight`, or
//   `output.weight` for an untied head. Those names are a model's only, so the base model's config
//   is needed, as its head counts are: q/k of the permuting families (Llama, SmolLM3) had B's rows
//   reordered per head by the converter, and are put back in HF's order here.
// - Scaling: llama.cpp's alpha / r per module, with one adapter.lora.alpha for the file and r read
//   from each B (llama-adapter.h's get_scale); an absent or zero alpha means a scale of 1 there,
//   and here. Our export folds PEFT's per-module scaling into B for exactly this reading.
// - Anything else is refused in one line: other tensors (llama.cpp skips `_norm.weight`, but a
//   LoRA that changes norms is not one this studio applies), embedding LoRA, unpaired factors,
//   factors that do not fit the base model's weight.
import { locateModule, modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { familyOf, moduleKind } from '../model/families.ts';
import { dequantize } from '../model/gguf/quant-types.ts';
import { readGguf, type GgufFile, type GgufTensorInfo } from '../model/gguf/read.ts';
import { hubRepoOfUrl } from '../model/gguf/source.ts';
import { interleavedToHalves } from '../model/rope-order.ts';
import type { AdapterModule, PeftAdapter } from './peft-read.ts';
import { PLAIN_VARIANT } from './variants.ts';

/** The base tensor name of each adaptable module of the model → its module path. */
function modulePaths(config: ModelConfig): Map<string, string> {
  const { arch } = config;
  const family = familyOf(arch);
  const paths = new Map<string, string>();
  if (arch.head !== arch.embedding) paths.set('output.weight', arch.head);
  for (let layer = 0; layer < config.numLayers; layer++)
    for (const m of arch.modules) {
      const tensor = family.gguf.tensors[m.name];
      if (tensor) paths.set(`blk.${layer}.${tensor}.weight`, modulePath(arch, layer, m));
    }
  return paths;
}

function requireString(gguf: GgufFile, key: string, file: string): string {
  const v = gguf.metadata.get(key);
  if (v?.type !== 'string')
    throw new FormatError(file, `metadata "${key}" is missing or not a string`);
  return v.value;
}

/** adapter.lora.alpha: an f32 as llama.cpp reads it (gguf_get_val_f32), 0 when absent. */
function loraAlpha(gguf: GgufFile, file: string): number {
  const v = gguf.metadata.get('adapter.lora.alpha');
  if (v === undefined) return 0;
  if (v.type !== 'f32' || !Number.isFinite(v.value))
    throw new FormatError(file, 'metadata "adapter.lora.alpha" must be a finite f32');
  return v.value;
}

/** The most common of the ranks: what `details.rank` reports, as PEFT's r beside a rank_pattern. */
function commonRank(ranks: number[]): number {
  const counts = new Map<number, number>();
  for (const r of ranks) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].reduce((best, x) => (x[1] > best[1] ? x : best), [0, 0])[0];
}

/**
 * A GGUF LoRA file as a PeftAdapter for the base model `config` (whose family, head counts and
 * module shapes the file's names and factors are read against). `file` names it in errors and is
 * the adapter's name.
 */
export function readGgufLora(bytes: Uint8Array, file: string, config: ModelConfig): PeftAdapter {
  const gguf = readGguf(bytes, file);
  // llama.cpp's models say general.type "model" or nothing; its adapters always "adapter".
  const type = gguf.metadata.get('general.type');
  if (type?.type !== 'string' || type.value !== 'adapter')
    throw new FormatError(
      file,
      `general.type is ${type === undefined ? 'missing' : type.type === 'string' ? JSON.stringify(type.value) : `a ${type.type}`}, not "adapter": not a GGUF LoRA (a GGUF model goes to --model)`,
    );
  const adapterType = requireString(gguf, 'adapter.type', file);
  if (adapterType !== 'lora')
    throw new FormatError(file, `adapter.type is "${adapterType}"; only "lora" adapters are read`);
  const family = familyOf(config.arch);
  const arch = requireString(gguf, 'general.architecture', file);
  if (arch !== family.gguf.arch)
    throw new FormatError(
      file,
      `is a LoRA for llama.cpp architecture "${arch}", but the model is "${family.gguf.arch}" (${family.name})`,
    );
  const alpha = loraAlpha(gguf, file);
  const paths = modulePaths(config);

  // Pair the factors by base tensor name, in the file's order.
  const pairs = new Map<string, { a?: GgufTensorInfo; b?: GgufTensorInfo }>();
  for (const info of gguf.tensors.values()) {
    const suffix = /\.lora_([ab])$/.exec(info.name);
    if (!suffix)
      throw new FormatError(
        file,
        `holds tensor "${info.name}", which is not a LoRA factor (<tensor>.lora_a / .lora_b)`,
      );
    const base = info.name.slice(0, -'.lora_a'.length);
    if (!paths.has(base))
      throw new FormatError(
        file,
        `tensor "${info.name}": the ${config.numLayers}-layer ${family.gguf.arch} base model has no adaptable tensor "${base}"${base.startsWith('token_embd') ? ' (embedding LoRA is not read)' : ''}`,
      );
    const pair = pairs.get(base) ?? pairs.set(base, {}).get(base)!;
    pair[suffix[1] as 'a' | 'b'] = info;
  }
  if (pairs.size === 0) throw new FormatError(file, 'holds no LoRA tensors');

  const modules = new Map<string, AdapterModule>();
  const nonFinite: { tensor: string; count: number }[] = [];
  const values = (info: GgufTensorInfo) => {
    const data = dequantize(info.type, gguf.data(info.name), info.ne[0] * info.ne[1]);
    const bad = data.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
    if (bad > 0) nonFinite.push({ tensor: info.name, count: bad });
    return data;
  };
  for (const [base, { a, b }] of pairs) {
    if (!a || !b)
      throw new FormatError(file, `has only one of ${base}'s LoRA factors (lora_a and lora_b)`);
    const path = paths.get(base)!;
    const shape =
      path === config.arch.head
        ? { in: config.hiddenSize, out: config.vocabSize }
        : locateModule(config.arch, path)!.module;
    // llama-adapter.cpp's shape check: A ne [in, r], B ne [r, out], r shared.
    const [inputs, rank] = a.ne;
    const [bRank, rows] = b.ne;
    if (a.ne.length !== 2 || b.ne.length !== 2 || rank !== bRank || rank < 1)
      throw new FormatError(
        file,
        `${base}: lora_a is [${a.ne.join(', ')}] and lora_b [${b.ne.join(', ')}] (ggml order); they must be [in, r] and [r, out]`,
      );
    if (inputs !== shape.in || rows !== shape.out)
      throw new FormatError(
        file,
        `${base} does not fit the base model: the factors make a ${rows} × ${inputs} update, the model's weight is ${shape.out} × ${shape.in}`,
      );
    const role = path === config.arch.head ? null : locateModule(config.arch, path)!.module.role;
    const heads =
      family.gguf.permuteQK && (role === 'q' || role === 'k')
        ? role === 'q'
          ? config.numHeads
          : config.numKvHeads
        : null;
    const bValues = values(b);
    modules.set(path, {
      a: values(a),
      b: heads === null ? bValues : interleavedToHalves(bValues, rows, heads),
      rank,
      scale: alpha === 0 ? 1 : alpha / rank,
    });
  }

  const rank = commonRank([...modules.values()].map((m) => m.rank));
  return {
    name: file,
    // The model the adapter was trained on, where the file names one on the Hub.
    baseModel: hubRepoOfUrl(gguf.metadata.get('general.base_model.0.repo_url')),
    modules,
    fullWeights: new Map(),
    details: {
      rank,
      // Without an alpha llama.cpp scales by 1, which is alpha = r.
      alpha: alpha === 0 ? rank : alpha,
      rslora: false,
      modules: modules.size,
      targets: [...new Set([...modules.keys()].map(moduleKind))],
      variant: PLAIN_VARIANT,
      fanInFanOut: config.arch.modules.some((m) => m.conv1d),
    },
    nonFinite,
  };
}
