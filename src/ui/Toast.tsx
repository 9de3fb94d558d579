import { useEffect } from 'react';
import { useToastStore } from './toast-store.ts';

/** How long a message stays; an error longer (its panel keeps the details). */
const SHOWN_MS = { info: 8000, error: 20000 } as const;

/** The toast, fixed at the bottom of the window, announced as it appears. */
export function Toast() {
  const toast = useToastStore((s) => s.toast);
  const dismiss = useToastStore((s) => s.dismiss);
  useEffect(() => {
    if (!toast) return;
    const timer = setTimeout(dismiss, SHOWN_MS[toast.kind]);
    return () => {
      clearTimeout(timer);
    };
  }, [toast, dismiss]);
  if (!toast) return null;
  return (
    <div
      className={`toast toast-${toast.kind}`}
      role={toast.kind === 'error' ? 'alert' : 'status'}
      data-testid="toast"
    >
      <span>{toast.text}</span>
      <button type="button" aria-label="Close the message" onClick={dismiss}>
        ×
      </button>
    </div>
  );
}
