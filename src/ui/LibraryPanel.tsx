import { useEffect, useRef, useState } from 'react';
import { refText } from '../hub/repo-id.ts';
import type { HubRef, LibraryItem } from '../worker/api.ts';
import { variantEntry } from '../worker/api.ts';
import { AdapterInspector } from './AdapterInspector.tsx';
import { AdapterTitle } from './AdapterTitle.tsx';
import { pickedFiles } from './dropped-files.ts';
import { useDropTarget } from './drop-target.ts';
import { formatBytes } from './format.ts';
import { CompressShare } from './CompressShare.tsx';
import { RankCut } from './RankCut.tsx';
import { hubEndpoint } from './hub-endpoint.ts';
import { HubPush } from './HubPush.tsx';
import { engineReady, studioApi, useGpuStore } from './gpu-store.ts';
import { AdapterUseControls } from './AdapterUseControls.tsx';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';
import { useStorageStore } from './storage-store.ts';
import { UseError } from './UseError.tsx';
import { useModelStore } from './model-store.ts';

/**
 * The adapters kept in this browser: import (files, or a Hub repo), use in the playground,
 * download as PEFT files, push to the Hub.
 */
export function LibraryPanel() {
  const ready = useGpuStore((s) => engineReady(s.status));
  const items = useLibraryStore((s) => s.items);
  const error = useLibraryStore((s) => s.error);
  const refresh = useLibraryStore((s) => s.refresh);
  const modelName = useModelStore((s) => s.model.info?.name);
  // Whether each adapter fits is asked of the loaded model: ask again when it changes.
  useEffect(() => {
    if (modelName) void refresh();
  }, [modelName, refresh]);
  const dropTarget = useDropTarget();
  if (!ready) return null;
  // Drops are taken by the page (page-drop.ts): this panel only shows where they may land.
  return (
    <section {...dropTarget} data-testid="library">
      <h2>Library</h2>
      <ImportControls />
      {items.length === 0 ? (
        <p className="muted">No adapters yet: the adapters you train or import land here.</p>
      ) : (
        <ul className="library">
          {items.map((item) => (
            <LibraryRow key={item.id} item={item} />
          ))}
        </ul>
      )}
      {error && <MessageLines text={error} />}
      <LibraryStorage adapters={items.length} />
    </section>
  );
}

/**
 * How the library is kept: the browser's storage used and available, whether the browser may
 * clear it (persistent storage is asked for once there is an adapter to lose), and the whole
 * library as one zip to keep elsewhere or restore.
 */
function LibraryStorage({ adapters }: { adapters: number }) {
  const { persisted, usage, quota, check, keep } = useStorageStore();
  const exportLibrary = useLibraryStore((s) => s.exportLibrary);
  const restoreLibrary = useLibraryStore((s) => s.restoreLibrary);
  const busy = useLibraryStore((s) => s.importState.state === 'importing');
  const picker = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (adapters > 0) void keep();
    else void check();
  }, [adapters, check, keep]);
  return (
    <div className="library-storage" data-testid="library-storage">
      <p className="muted">
        {usage !== null && quota !== null
          ? `Kept in this browser: ${formatBytes(usage)} used of ${formatBytes(quota)} available`
          : 'Kept in this browser'}
        {persisted === true && ', until you clear the site’s data.'}
        {persisted === false &&
          ', which may clear it when the disk runs low: export the library to keep a copy.'}
        {persisted === null && '.'}
      </p>
      <div className="controls">
        <button type="button" disabled={adapters === 0} onClick={() => void exportLibrary()}>
          Export library (.zip)
        </button>
        {/* A button that opens the hidden picker: reachable with Tab, unlike a label. */}
        <button type="button" disabled={busy} onClick={() => picker.current?.click()}>
          Restore library…
        </button>
        <input
          ref={picker}
          type="file"
          hidden
          accept=".zip,application/zip"
          data-testid="library-restore"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void restoreLibrary(file);
            e.target.value = '';
          }}
        />
      </div>
    </div>
  );
}

/** A webkitdirectory input picks a whole folder (React does not know the attribute). */
const FOLDER_PICKER = { webkitdirectory: '' };

function ImportControls() {
  const state = useLibraryStore((s) => s.importState);
  const importFiles = useLibraryStore((s) => s.importFiles);
  const importAnyway = useLibraryStore((s) => s.importAnyway);
  const busy = state.state === 'importing';
  const pick = (input: HTMLInputElement) => {
    void importFiles(pickedFiles(input.files));
    input.value = '';
  };
  return (
    <div className="library-import">
      <div className="model-sources">
        <label className="button-like" aria-disabled={busy}>
          Import adapter…
          <input
            type="file"
            multiple
            hidden
            disabled={busy}
            accept=".json,.safetensors,.bin,.zip,.compeft,application/json,application/zip"
            data-testid="adapter-files"
            onChange={(e) => {
              pick(e.target);
            }}
          />
        </label>
        <label className="button-like" aria-disabled={busy}>
          Import folder…
          <input
            type="file"
            hidden
            disabled={busy}
            data-testid="adapter-folder"
            {...FOLDER_PICKER}
            onChange={(e) => {
              pick(e.target);
            }}
          />
        </label>
      </div>
      <HubImport busy={busy} />
      <p className="muted hint">
        Or drop an adapter anywhere on the page: its <code>adapter_config.json</code> and{' '}
        <code>adapter_model.safetensors</code>, the folder holding them, a .zip of it, or a
        compressed <code>.compeft</code>.
      </p>
      <div aria-live="polite" data-testid="import-status">
        {state.state === 'importing' && <p aria-busy="true">Importing {state.names}…</p>}
        {state.state === 'done' && <p className="muted">Imported {state.name}.</p>}
      </div>
      {state.state === 'failed' && (
        <div className="import-error" data-testid="import-error">
          <MessageLines text={state.message} />
          {/does not fit/.test(state.message) && (
            <button type="button" onClick={() => void importAnyway()}>
              Import anyway
            </button>
          )}
        </div>
      )}
    </div>
  );
}

/** An adapter from a Hub repo by its id, at a branch or commit after "@". */
function HubImport({ busy }: { busy: boolean }) {
  const importFromHub = useLibraryStore((s) => s.importFromHub);
  const [ref, setRef] = useState('');
  return (
    <form
      className="hub"
      onSubmit={(e) => {
        e.preventDefault();
        void importFromHub(ref);
      }}
    >
      <input
        value={ref}
        placeholder="Hub adapter, e.g. owner/name or owner/name@revision"
        aria-label="Hugging Face Hub adapter repo"
        spellCheck={false}
        autoComplete="off"
        disabled={busy}
        data-testid="hub-adapter-id"
        onChange={(e) => {
          setRef(e.target.value);
        }}
      />
      <button type="submit" disabled={busy || !ref.trim()}>
        Import from the Hub
      </button>
    </form>
  );
}

/** Where the adapter is on the Hub: what a composition link names it by. */
function HubLink({ hub }: { hub: HubRef }) {
  const page = `${hubEndpoint() ?? 'https://huggingface.co'}/${hub.repo}/tree/${encodeURIComponent(hub.revision ?? 'main')}`;
  return (
    <p className="muted" data-testid="adapter-hub">
      On the Hub:{' '}
      <a href={page} target="_blank" rel="noreferrer">
        {refText(hub)}
      </a>
    </p>
  );
}

/** The adapter's README.md as it came (a Hub repo's card, or the one training wrote), as text. */
function ModelCard({ id }: { id: string }) {
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    void studioApi()
      ?.adapterFiles(id)
      .then((files) => {
        const card = files.find((f) => f.name === 'README.md');
        if (current) setText(card ? new TextDecoder().decode(card.bytes) : '');
      });
    return () => {
      current = false;
    };
  }, [id]);
  return (
    <pre className="recipe model-card" id={`card-${id}`} data-testid="model-card-text">
      {text ?? 'Reading…'}
    </pre>
  );
}

function LibraryRow({ item }: { item: LibraryItem }) {
  const download = useLibraryStore((s) => s.download);
  const downloadZip = useLibraryStore((s) => s.downloadZip);
  const downloadGguf = useLibraryStore((s) => s.downloadGguf);
  const duplicate = useLibraryStore((s) => s.duplicate);
  const remove = useLibraryStore((s) => s.remove);
  const ggufError = useLibraryStore((s) => s.ggufErrors[item.id]);
  const [inspecting, setInspecting] = useState(false);
  const [pushing, setPushing] = useState(false);
  const [reading, setReading] = useState(false);
  const [sharing, setSharing] = useState(false);
  const [cutting, setCutting] = useState(false);
  return (
    <li className="library-item" data-testid="library-item">
      <div className="library-title">
        <AdapterTitle item={item} />
        <span className="muted">{formatBytes(item.bytes)}</span>
      </div>
      <p className="muted">
        {item.origin} · for {item.baseModel} · {new Date(item.createdAt).toLocaleString()}
        <FitsChip item={item} />
      </p>
      {item.hub && <HubLink hub={item.hub} />}
      {item.details && <Details details={item.details} />}
      {item.warnings && item.warnings.length > 0 && (
        <ul className="library-warnings" data-testid="adapter-warnings">
          {item.warnings.map((w) => (
            <li key={w} className="note">
              {w}
            </li>
          ))}
        </ul>
      )}
      <AdapterUseControls item={item} />
      <UseError id={item.id} testId="adapter-use-error" />
      <div className="controls">
        <button
          type="button"
          aria-label={`Inspect ${item.name}`}
          aria-expanded={inspecting}
          aria-controls={`inspect-${item.id}`}
          onClick={() => {
            setInspecting(!inspecting);
          }}
        >
          Inspect
        </button>
        {item.files.includes('README.md') && (
          <button
            type="button"
            aria-label={`Model card of ${item.name}`}
            aria-expanded={reading}
            aria-controls={`card-${item.id}`}
            onClick={() => {
              setReading(!reading);
            }}
          >
            Card
          </button>
        )}
        <button
          type="button"
          aria-label={`Duplicate ${item.name}`}
          onClick={() => void duplicate(item.id)}
        >
          Duplicate
        </button>
        <button
          type="button"
          aria-label={`Download ${item.name} as a zip`}
          onClick={() => void downloadZip(item.id)}
        >
          ⤓ .zip
        </button>
        <button
          type="button"
          aria-label={`Download ${item.name} as a GGUF LoRA for llama.cpp`}
          onClick={() => void downloadGguf(item.id)}
        >
          ⤓ .gguf
        </button>
        {item.files.map((file) => (
          <button
            key={file}
            type="button"
            aria-label={`Download ${file} of ${item.name}`}
            onClick={() => void download(item.id, file)}
          >
            ⤓ {file}
          </button>
        ))}
        {item.dylora && (
          <button
            type="button"
            aria-expanded={cutting}
            aria-controls={`rank-${item.id}`}
            onClick={() => {
              setCutting(!cutting);
            }}
          >
            Cut rank…
            <ItemName item={item} />
          </button>
        )}
        <button
          type="button"
          aria-expanded={sharing}
          aria-controls={`compress-${item.id}`}
          onClick={() => {
            setSharing(!sharing);
          }}
        >
          Share compressed…
          <ItemName item={item} />
        </button>
        <button
          type="button"
          aria-expanded={pushing}
          aria-controls={`push-${item.id}`}
          onClick={() => {
            setPushing(!pushing);
          }}
        >
          Push to Hub…
          <ItemName item={item} />
        </button>
        <button
          type="button"
          className="danger"
          aria-label={`Remove ${item.name}`}
          onClick={() => void remove(item.id)}
        >
          Remove
        </button>
      </div>
      {ggufError && <MessageLines text={ggufError} testId="gguf-error" />}
      {sharing && <CompressShare item={item} />}
      {cutting && <RankCut item={item} />}
      {pushing && <HubPush item={item} />}
      {inspecting && <AdapterInspector id={item.id} />}
      {reading && <ModelCard id={item.id} />}
    </li>
  );
}

/** Whether the adapter's shapes fit the loaded model; nothing while no model is loaded. */
function FitsChip({ item }: { item: LibraryItem }) {
  const modelName = useModelStore((s) => s.model.info?.name);
  if (item.fits == null || !modelName) return null;
  return item.fits ? (
    <span
      className="chip chip-on"
      title={`Its modules have the shapes of ${modelName}'s`}
      data-testid="fits-chip"
    >
      fits {modelName}
    </span>
  ) : (
    <span className="chip chip-warn" title={item.misfit} data-testid="fits-chip">
      does not fit
    </span>
  );
}

function Details({ details }: { details: NonNullable<LibraryItem['details']> }) {
  const { tag } = variantEntry(details.variant);
  return (
    <ul className="chips adapter-details" data-testid="adapter-details">
      <li className="chip">rank {details.rank}</li>
      <li className="chip">alpha {details.alpha}</li>
      <li className="chip">
        {details.modules} module{details.modules === 1 ? '' : 's'}
      </li>
      <li className="chip">{details.targets.join(', ')}</li>
      {details.rslora && <li className="chip">rsLoRA</li>}
      {tag && (
        <li className="chip" title={tag.title}>
          {tag.text}
        </li>
      )}
    </ul>
  );
}

/**
 * The adapter a card's button acts on, for screen readers only: the button's name is its visible
 * text and then the adapter's ("Push to Hub… (zimmy)"), as speech control expects.
 */
function ItemName({ item }: { item: LibraryItem }) {
  return <span className="visually-hidden"> ({item.name})</span>;
}
