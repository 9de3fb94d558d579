import { useEffect, useRef, useState } from 'react';
import { errorMessage } from '../errors.ts';
import type { LibraryItem } from '../worker/api.ts';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';

/** A library adapter's name with a Rename button that turns it into a text field. */
export function AdapterTitle({ item }: { item: LibraryItem }) {
  const [editing, setEditing] = useState(false);
  const renameButton = useRef<HTMLButtonElement>(null);
  // Focus goes back to the button after an edit (not on the first render).
  const refocus = useRef(false);
  useEffect(() => {
    if (!editing && refocus.current) renameButton.current?.focus();
    refocus.current = false;
  }, [editing]);
  if (editing)
    return (
      <RenameField
        item={item}
        onDone={() => {
          refocus.current = true;
          setEditing(false);
        }}
      />
    );
  return (
    <span className="adapter-title">
      <strong>{item.name}</strong>
      <button
        ref={renameButton}
        type="button"
        className="small-button"
        aria-label={`Rename ${item.name}`}
        onClick={() => {
          setEditing(true);
        }}
      >
        Rename
      </button>
    </span>
  );
}

/** Enter (or Save) renames, Escape (or Cancel) leaves the name; a refusal is shown in place. */
function RenameField({ item, onDone }: { item: LibraryItem; onDone: () => void }) {
  const rename = useLibraryStore((s) => s.rename);
  const [name, setName] = useState(item.name);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const save = async () => {
    if (name === item.name) {
      onDone();
      return;
    }
    setSaving(true);
    try {
      await rename(item.id, name);
      onDone();
    } catch (e) {
      setError(errorMessage(e));
      setSaving(false);
    }
  };
  return (
    <form
      className="rename-field"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <input
        ref={input}
        value={name}
        // Read-only, not disabled, while saving: a disabled field would lose the keyboard focus.
        readOnly={saving}
        aria-label={`New name for ${item.name}`}
        data-testid="rename-input"
        onChange={(e) => {
          setName(e.target.value);
          setError(null);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.preventDefault();
            onDone();
          }
        }}
      />
      <button type="submit" className="small-button" disabled={saving}>
        Save
      </button>
      <button type="button" className="small-button" disabled={saving} onClick={onDone}>
        Cancel
      </button>
      {error && <MessageLines text={error} testId="rename-error" />}
    </form>
  );
}
