// A PEFT adapter from a Hub repo, by its ref: adapter_config.json and adapter_model.safetensors
// (and the model card, when there is one), downloaded through the model downloads' cache. A repo that keeps only the pickled
// adapter_model.bin is refused: the studio never unpickles.
import { errorMessage } from '../errors.ts';
import { ZIP_LIMITS, type DroppedFile } from '../adapters/import.ts';
import { FormatError } from '../model/errors.ts';
import { hubRepoFile, type HubOptions } from '../model/hub.ts';
import { refText, type HubRef } from './repo-id.ts';

export const CARD_FILE = 'README.md';
const CARD_BYTES = 2 ** 20;

/** The adapter's two PEFT files and its card, as an import takes them. Rejects in one line. */
export async function hubAdapterFiles(
  ref: HubRef,
  options: Omit<HubOptions, 'revision' | 'maxBytes'> = {},
): Promise<DroppedFile[]> {
  // As large as an adapter dropped in a zip may be.
  const get = (file: string) =>
    hubRepoFile(ref.repo, file, {
      ...options,
      revision: ref.revision ?? 'main',
      maxBytes: ZIP_LIMITS.maxBytes,
    });
  const where = refText(ref);
  // hubRepoFile's errors name the repo and file; these name the ref once.
  const why = (e: unknown) => (e instanceof FormatError ? e.problem : errorMessage(e));
  let config: Uint8Array;
  try {
    config = await get('adapter_config.json');
  } catch (e) {
    throw new FormatError(where, `has no PEFT adapter on the Hub (adapter_config.json: ${why(e)})`);
  }
  let weights: Uint8Array;
  try {
    weights = await get('adapter_model.safetensors');
  } catch (e) {
    throw new FormatError(
      where,
      `has no adapter_model.safetensors on the Hub (${why(e)}); the studio never loads the pickled adapter_model.bin`,
    );
  }
  // The model card, where the repo has one (at most 1 MiB: it is text), travels with the adapter.
  const card = await hubRepoFile(ref.repo, 'README.md', {
    ...options,
    revision: ref.revision ?? 'main',
    maxBytes: CARD_BYTES,
  }).catch(() => undefined);
  return [
    { name: 'adapter_config.json', bytes: config },
    { name: 'adapter_model.safetensors', bytes: weights },
    ...(card ? [{ name: CARD_FILE, bytes: card }] : []),
  ];
}
