// Which Hugging Face Hub repo a GGUF file names, from llama.cpp's general.* metadata (gguf-py's
// constants.py, Keys.General): the model's own source for a model file, the model it was
// trained from for a LoRA file.
import type { GgufValue } from './read.ts';

type Metadata = ReadonlyMap<string, GgufValue>;

const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

/** The repo id of a `https://huggingface.co/<owner>/<name>` URL; null for any other value. */
export function hubRepoOfUrl(value: GgufValue | undefined): string | null {
  const match =
    value?.type === 'string'
      ? /^https:\/\/huggingface\.co\/([\w.-]+\/[\w.-]+)$/.exec(value.value)
      : null;
  return match ? match[1] : null;
}

/**
 * The Hub repo a GGUF model file was converted from, where its metadata says so: gguf-py's
 * general.source.repo_url, then older converters' general.source.huggingface.repository (a bare
 * id), then general.repo_url. Not general.base_model.*: that names the model this one was
 * fine-tuned from.
 */
export function ggufSourceRepo(metadata: Metadata): string | undefined {
  const legacy = metadata.get('general.source.huggingface.repository');
  return (
    hubRepoOfUrl(metadata.get('general.source.repo_url')) ??
    (legacy?.type === 'string' && REPO_ID.test(legacy.value) ? legacy.value : null) ??
    hubRepoOfUrl(metadata.get('general.repo_url')) ??
    undefined
  );
}
