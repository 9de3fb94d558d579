/** Lines shown before a long message folds the rest away. */
const SHOWN_LINES = 10;

/**
 * A message from the worker whose line breaks mean something ("does not fit this model:" and a
 * module per line): each line its own, a long one wrapped under its indent, and past
 * SHOWN_LINES the rest behind a "more lines" toggle.
 */
export function MessageLines({ text, testId }: { text: string; testId?: string }) {
  const lines = text.split('\n');
  const folded = lines.length > SHOWN_LINES + 1 ? lines.splice(SHOWN_LINES) : [];
  const render = (line: string, i: number) => (
    <span key={i} className="line">
      {line}
    </span>
  );
  return (
    <div className="error lines" role="alert" data-testid={testId}>
      {lines.map(render)}
      {folded.length > 0 && (
        <details>
          <summary>{folded.length} more lines</summary>
          {folded.map(render)}
        </details>
      )}
    </div>
  );
}
