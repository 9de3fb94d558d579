import { useState } from 'react';
import { errorMessage } from '../errors.ts';
import type { Baked } from './compose-store.ts';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';

/**
 * The spec with its adapters named as the library names them (the library's ids mean nothing
 * outside this browser); the merged adapter's merge_recipe.json keeps both.
 */
function namedSpec({ spec, sources }: Baked) {
  const names = new Map(sources.map((s) => [s.id, s.name]));
  return { ...spec, adapters: spec.adapters.map((a) => ({ ...a, id: names.get(a.id) ?? a.id })) };
}

/** The baked adapter: its rank and lost energy, the recipe to copy, the zip to download. */
export function BakeResult({ baked }: { baked: Baked }) {
  const downloadZip = useLibraryStore((s) => s.downloadZip);
  const [copied, setCopied] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const recipe = JSON.stringify(namedSpec(baked), null, 2);
  const copyRecipe = async () => {
    try {
      await navigator.clipboard.writeText(recipe);
      setCopied(true);
      setProblem(null);
    } catch (e) {
      setProblem(`Could not copy: ${errorMessage(e)}`);
    }
  };
  const download = async () => {
    await downloadZip(baked.item.id);
    // The library keeps the failure of its last action: show it here, where it was asked for.
    setProblem(useLibraryStore.getState().error);
  };
  return (
    <div className="compose-card bake-result" data-testid="bake-result">
      <h3>Result</h3>
      <div className="bake-result-body">
        <div>
          <p>
            <strong>{baked.item.name}</strong> is in the library.
          </p>
          <dl className="facts">
            <dt>Rank</dt>
            <dd data-testid="merged-rank">{baked.item.details?.rank ?? '—'}</dd>
            <dt title="Share of ‖ΔW‖² (all modules) the output rank dropped">Energy lost</dt>
            <dd data-testid="lost-energy">{(baked.lostEnergy * 100).toFixed(2)} %</dd>
            <dt>Modules</dt>
            <dd>{baked.item.details?.modules ?? '—'}</dd>
          </dl>
          <div className="controls">
            <button type="button" onClick={() => void copyRecipe()}>
              Copy recipe
            </button>
            <button
              type="button"
              aria-label={`Download ${baked.item.name} as a zip`}
              onClick={() => void download()}
            >
              Download zip
            </button>
            <span className="muted" aria-live="polite">
              {copied && 'Copied.'}
            </span>
          </div>
          {problem && <MessageLines text={problem} />}
          <p className="muted hint">
            The zip holds the PEFT files, a README.md model card and merge_recipe.json (this spec
            with every default filled in).
          </p>
        </div>
        <pre className="recipe" data-testid="recipe-json">
          {recipe}
        </pre>
      </div>
    </div>
  );
}
