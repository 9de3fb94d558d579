import { useEffect, useRef, useState } from 'react';
import { errorMessage } from '../errors.ts';
import type { LibraryItem } from '../worker/api.ts';
import { studioApi } from './gpu-store.ts';
import {
  EMPTY_PUSH_FORM,
  progressText,
  pushLibraryAdapter,
  resultText,
  type HubPushForm,
  type HubPushOutcome,
  type PushProgress,
} from './hub-push.ts';
import { hubEndpoint } from './hub-endpoint.ts';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';

type PushView =
  | { state: 'idle' }
  | { state: 'running'; progress: PushProgress | null }
  | { state: 'done'; result: HubPushOutcome }
  | { state: 'failed'; message: string };

/**
 * "Push to Hub" for one library adapter: the repo id, a token (a password field whose value lives
 * in this component's state only, gone when the form closes), the card's base model when the
 * adapter's is no Hub id, private, and a GGUF for the loaded model; then progress and one line.
 */
export function HubPush({ item }: { item: LibraryItem }) {
  const [form, setForm] = useState<HubPushForm>(EMPTY_PUSH_FORM);
  const [view, setView] = useState<PushView>({ state: 'idle' });
  const abort = useRef<AbortController | null>(null);
  // Closing the form stops its push.
  useEffect(() => () => abort.current?.abort(), []);
  const running = view.state === 'running';
  const set = (patch: Partial<HubPushForm>) => {
    setForm((f) => ({ ...f, ...patch }));
  };

  const push = async () => {
    const studio = studioApi();
    if (!studio || running) return;
    const controller = new AbortController();
    abort.current = controller;
    setView({ state: 'running', progress: null });
    try {
      const result = await pushLibraryAdapter(studio, item.id, form, {
        endpoint: hubEndpoint(),
        signal: controller.signal,
        onProgress: (progress) => {
          setView({ state: 'running', progress });
        },
      });
      setView({ state: 'done', result });
      // A composition link can now name the adapter by this repo at this commit.
      await studio.setAdapterHub(item.id, { repo: result.repo, revision: result.commit.oid });
      await useLibraryStore.getState().refresh();
    } catch (e) {
      setView({ state: 'failed', message: errorMessage(e) });
    } finally {
      abort.current = null;
    }
  };

  const progress = view.state === 'running' ? view.progress : null;
  const counted = progress?.phase === 'lfs' && progress.total > 0;
  return (
    <div className="hub-push" id={`push-${item.id}`} data-testid="hub-push">
      <div className="form-grid">
        <label>
          Repo (user/name)
          <input
            value={form.repo}
            placeholder="your-name/my-adapter"
            spellCheck={false}
            autoComplete="off"
            disabled={running}
            data-testid="push-repo"
            onChange={(e) => {
              set({ repo: e.target.value });
            }}
          />
        </label>
        <label>
          Token (write)
          <input
            type="password"
            value={form.token}
            placeholder="hf_…"
            autoComplete="off"
            disabled={running}
            data-testid="push-token"
            onChange={(e) => {
              set({ token: e.target.value });
            }}
          />
        </label>
        <label title="The model card's base_model, when the adapter names no Hub model (one trained on a local file)">
          Base model
          <input
            value={form.baseModel}
            placeholder="from the adapter"
            spellCheck={false}
            autoComplete="off"
            disabled={running}
            data-testid="push-base-model"
            onChange={(e) => {
              set({ baseModel: e.target.value });
            }}
          />
        </label>
        <label className="check">
          <input
            type="checkbox"
            checked={form.private}
            disabled={running}
            onChange={(e) => {
              set({ private: e.target.checked });
            }}
          />
          Private repo
        </label>
        <label
          className="check"
          title="A llama.cpp GGUF LoRA for the loaded model, beside the PEFT files"
        >
          <input
            type="checkbox"
            checked={form.gguf}
            disabled={running}
            onChange={(e) => {
              set({ gguf: e.target.checked });
            }}
          />
          With .gguf
        </label>
      </div>
      <p className="muted hint">
        The token stays in this page&apos;s memory while this form is open: it is sent only to the
        Hub, and never saved. Create one with the write role at{' '}
        <a href="https://huggingface.co/settings/tokens" target="_blank" rel="noreferrer">
          huggingface.co/settings/tokens
        </a>
        .
      </p>
      <div className="controls">
        <button
          type="button"
          disabled={running || !form.repo.trim() || !form.token.trim()}
          onClick={() => void push()}
        >
          Push {item.name} to the Hub
        </button>
        {running && (
          <button type="button" onClick={() => abort.current?.abort()}>
            Cancel
          </button>
        )}
      </div>
      <div aria-live="polite" data-testid="push-status">
        {running && (
          <label className="push-progress">
            <span>{progress ? progressText(progress) : 'Reading the adapter…'}</span>
            <progress
              value={counted ? progress.done : undefined}
              max={counted ? progress.total : undefined}
            />
          </label>
        )}
        {view.state === 'done' && (
          <p data-testid="push-result">
            {resultText(view.result)} ·{' '}
            <a href={view.result.url} target="_blank" rel="noreferrer">
              open
            </a>
          </p>
        )}
      </div>
      {view.state === 'failed' && <MessageLines text={view.message} testId="push-error" />}
    </div>
  );
}
