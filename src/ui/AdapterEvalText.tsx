import type { LibraryItem } from '../worker/api.ts';
import { useComposeStore } from './compose-store.ts';

/**
 * The adapter's eval text (the merge report's, shared), and what a measurement may use of it:
 * null unless the loaded model is the adapter's and there is text.
 */
export function useAdapterEvalText(item: LibraryItem): string | null {
  const evalText = useComposeStore((s) => s.evalTexts[item.id] ?? '');
  return item.fits === true && evalText.trim() !== '' ? evalText : null;
}

/** The field that edits it, in the Library's per-adapter panels (compress, rank cut). */
export function AdapterEvalTextField({
  item,
  disabled,
  testId,
}: {
  item: LibraryItem;
  disabled: boolean;
  testId: string;
}) {
  const evalText = useComposeStore((s) => s.evalTexts[item.id] ?? '');
  const setEvalText = useComposeStore((s) => s.setEvalText);
  return (
    <label className="eval-text">
      Eval text {item.fits !== true && <span className="muted">(load its model to measure)</span>}
      <textarea
        rows={3}
        value={evalText}
        disabled={disabled}
        data-testid={testId}
        placeholder="Text in the adapter's style (the merge report's eval text)"
        onChange={(e) => {
          setEvalText(item.id, e.target.value);
        }}
      />
    </label>
  );
}
