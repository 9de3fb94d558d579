// A library adapter pushed to the Hub from the page's main thread: the files Download gives (from
// the worker), the model card's base_model made valid, then src/hub/push.ts's one commit. The
// token stays on the main thread: in the form's React state while the form is open and in this
// call while it runs; it is sent to no worker, stored nowhere (no zustand persist, no IndexedDB,
// no URL) and appears in no message.
// The push code (and the YAML parser the card needs) loads with the first push, not the page.
import type { PushProgress, PushResult } from '../hub/push.ts';

export type { PushProgress };

/** What the push form holds. */
export interface HubPushForm {
  repo: string;
  token: string;
  /** The card's base_model when the adapter's own is not a Hub id; blank: the adapter's. */
  baseModel: string;
  private: boolean;
  /** Also push the adapter as a llama.cpp GGUF LoRA for the loaded model. */
  gguf: boolean;
}

export const EMPTY_PUSH_FORM: HubPushForm = {
  repo: '',
  token: '',
  baseModel: '',
  private: false,
  gguf: false,
};

/** The worker calls a push needs (StudioApi's). */
export interface PushSource {
  adapterFiles(id: string): Promise<{ name: string; bytes: Uint8Array }[]>;
  adapterGguf(id: string): Promise<{ name: string; bytes: Uint8Array }>;
}

export interface HubPushOutcome extends PushResult {
  card: 'kept' | 'base_model filled' | 'written';
}

/** Pushes the library adapter `id` as the form says. Rejects with one line. */
export async function pushLibraryAdapter(
  source: PushSource,
  id: string,
  form: HubPushForm,
  options: { endpoint?: string; onProgress?: (p: PushProgress) => void; signal?: AbortSignal },
): Promise<HubPushOutcome> {
  const [{ adapterUpload }, { pushToHub }] = await Promise.all([
    import('../hub/adapter-upload.ts'),
    import('../hub/push.ts'),
  ]);
  const files = new Map((await source.adapterFiles(id)).map((f) => [f.name, f.bytes]));
  const gguf = form.gguf ? await source.adapterGguf(id) : undefined;
  const repo = form.repo.trim();
  const upload = adapterUpload(files, {
    repo,
    baseModel: form.baseModel.trim() || undefined,
    gguf,
  });
  const result = await pushToHub(upload.files, {
    repo,
    token: form.token,
    endpoint: options.endpoint,
    private: form.private,
    message: 'Upload adapter with LoRA Studio',
    onProgress: options.onProgress,
    signal: options.signal,
  });
  return { ...result, card: upload.card };
}

/** What the form shows while a push runs, in words. */
export function progressText(p: PushProgress): string {
  switch (p.phase) {
    case 'repo':
      return 'Creating the repo…';
    case 'preupload':
      return 'Asking the Hub how to send each file…';
    case 'lfs':
      return `Uploading the large files${p.file ? ` (${p.file})` : ''}…`;
    case 'commit':
      return 'Committing…';
  }
}

/** The one line a finished push leaves. */
export function resultText(r: HubPushOutcome): string {
  const card =
    r.card === 'kept' ? '' : r.card === 'written' ? ', model card written' : ', base_model filled';
  return `Pushed ${r.files.length} files to ${r.repo} (${r.created ? 'new repo' : 'existing repo'}${card}): commit ${r.commit.oid.slice(0, 7)}`;
}
