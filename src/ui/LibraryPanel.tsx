import type { LibraryItem } from '../worker/api.ts';
import { formatBytes } from './format.ts';
import { useGpuStore } from './gpu-store.ts';
import { useLibraryStore } from './library-store.ts';

/** The adapters kept in this browser, each downloadable as PEFT files. */
export function LibraryPanel() {
  const ready = useGpuStore((s) => s.status.state === 'ready');
  const items = useLibraryStore((s) => s.items);
  const error = useLibraryStore((s) => s.error);
  if (!ready) return null;
  return (
    <section className="panel" data-testid="library">
      <h2>Library</h2>
      {items.length === 0 ? (
        <p className="muted">No adapters yet: the adapters you train land here.</p>
      ) : (
        <ul className="library">
          {items.map((item) => (
            <LibraryRow key={item.id} item={item} />
          ))}
        </ul>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function LibraryRow({ item }: { item: LibraryItem }) {
  const download = useLibraryStore((s) => s.download);
  const remove = useLibraryStore((s) => s.remove);
  return (
    <li className="library-item" data-testid="library-item">
      <div className="library-title">
        <strong>{item.name}</strong>
        <span className="muted">{formatBytes(item.bytes)}</span>
      </div>
      <p className="muted">
        {item.origin} · for {item.baseModel} · {new Date(item.createdAt).toLocaleString()}
      </p>
      <div className="controls">
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
        <button
          type="button"
          className="danger"
          aria-label={`Remove ${item.name}`}
          onClick={() => void remove(item.id)}
        >
          Remove
        </button>
      </div>
    </li>
  );
}
