import { useComposeStore, type PreviewText } from './compose-store.ts';
import { useModelStore } from './model-store.ts';
import { MessageLines } from './MessageLines.tsx';

/** The same prompt continued by the base, each adapter in use alone, and the composition. */
export function LivePreview() {
  const hasModel = useModelStore((s) => s.model.info !== null);
  const options = useComposeStore((s) => s.previewOptions);
  const setOptions = useComposeStore((s) => s.setPreviewOptions);
  const preview = useComposeStore((s) => s.preview);
  const runPreview = useComposeStore((s) => s.runPreview);
  return (
    <div className="compose-card" data-testid="preview">
      <h3>Live preview</h3>
      <form
        className="preview-form"
        onSubmit={(e) => {
          e.preventDefault();
          void runPreview();
        }}
      >
        <label className="preview-prompt">
          Prompt
          <input
            value={options.prompt}
            data-testid="preview-prompt"
            onChange={(e) => {
              setOptions({ prompt: e.target.value });
            }}
          />
        </label>
        <label className="check" title="Off: sampled at temperature 0.8, top-p 0.9 from the seed">
          <input
            type="checkbox"
            checked={options.greedy}
            onChange={(e) => {
              setOptions({ greedy: e.target.checked });
            }}
          />
          Greedy
        </label>
        <label>
          Seed
          <input
            type="number"
            value={options.seed}
            disabled={options.greedy}
            onChange={(e) => {
              if (e.target.value !== '') setOptions({ seed: Math.trunc(Number(e.target.value)) });
            }}
          />
        </label>
        <label className="check" title="Generate again when a switch or a weight settles">
          <input
            type="checkbox"
            checked={options.live}
            onChange={(e) => {
              setOptions({ live: e.target.checked });
            }}
          />
          Live
        </label>
        <button type="submit" disabled={!hasModel}>
          {preview.running ? 'Preview again' : 'Preview'}
        </button>
      </form>
      {!hasModel && <p className="muted">Load a model to preview.</p>}
      {preview.error && <MessageLines text={preview.error} testId="preview-error" />}
      {preview.texts.length > 0 && (
        <ul
          className={preview.stale ? 'preview-texts stale' : 'preview-texts'}
          aria-live="polite"
          aria-busy={preview.running}
        >
          {preview.texts.map((t, i) => (
            <PreviewCard key={i} text={t} />
          ))}
        </ul>
      )}
    </div>
  );
}

function PreviewCard({ text }: { text: PreviewText }) {
  return (
    <li
      className={`preview-text preview-${text.kind}`}
      data-testid="preview-text"
      data-kind={text.kind}
      data-pending={text.pending}
    >
      <h4 title={text.label}>{text.label}</h4>
      <p>{text.text || (text.pending ? '…' : '')}</p>
    </li>
  );
}
