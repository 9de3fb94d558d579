import { useState } from 'react';
import { errorMessage } from '../errors.ts';
import type { LibraryItem, RankPoint } from '../worker/api.ts';
import { AdapterEvalTextField, useAdapterEvalText } from './AdapterEvalText.tsx';
import { formatBytes } from './format.ts';
import { studioApi } from './gpu-store.ts';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';

type View =
  | { state: 'idle' }
  | { state: 'running'; what: string }
  | { state: 'measured'; points: RankPoint[] }
  | { state: 'cut'; name: string }
  | { state: 'failed'; message: string };

/**
 * "Cut to rank" for a DyLoRA-trained adapter: a rank slider, each rank's size and (with the
 * adapter's eval text and its model loaded) perplexity, and the cut added to the library.
 */
export function RankCut({ item }: { item: LibraryItem }) {
  const full = item.details?.rank ?? 1;
  const [rank, setRank] = useState(Math.max(1, Math.floor(full / 2)));
  const [view, setView] = useState<View>({ state: 'idle' });
  const refresh = useLibraryStore((s) => s.refresh);
  const text = useAdapterEvalText(item);
  const running = view.state === 'running';
  const points = view.state === 'measured' ? view.points : [];
  const chosen = points.find((p) => p.rank === rank);

  const run = async (what: string, job: () => Promise<View>) => {
    if (running) return;
    setView({ state: 'running', what });
    try {
      setView(await job());
    } catch (e) {
      setView({ state: 'failed', message: errorMessage(e) });
    }
  };
  const studio = () => {
    const api = studioApi();
    if (!api) throw new Error('The engine is not ready.');
    return api;
  };

  return (
    <div className="rank-cut" id={`rank-${item.id}`} data-testid="rank-cut">
      <p className="muted hint">
        Trained with DyLoRA: every rank prefix is an adapter of its own. Cut it to a smaller rank to
        share less; give an eval text to see what each rank costs.
      </p>
      <label>
        Rank {rank} of {full}
        <input
          type="range"
          min={1}
          max={full}
          step={1}
          value={rank}
          disabled={running}
          data-testid="rank-cut-rank"
          onChange={(e) => {
            setRank(Number(e.target.value));
          }}
        />
      </label>
      {chosen && (
        <p data-testid="rank-cut-cost">
          Rank {rank}: {formatBytes(chosen.bytes)}
          {chosen.perplexity !== null && `, perplexity ${chosen.perplexity.toFixed(2)}`}
        </p>
      )}
      <AdapterEvalTextField item={item} disabled={running} testId="rank-cut-eval-text" />
      <div className="controls">
        <button
          type="button"
          disabled={running}
          onClick={() =>
            void run('Measuring every rank…', async () => ({
              state: 'measured',
              points: await studio().rankCurve(item.id, text),
            }))
          }
        >
          Measure every rank
        </button>
        <button
          type="button"
          disabled={running || rank === full}
          data-testid="rank-cut-button"
          onClick={() =>
            void run(`Cutting to rank ${rank}…`, async () => {
              const cut = await studio().cutAdapter(item.id, rank);
              await refresh();
              return { state: 'cut', name: cut.name };
            })
          }
        >
          Cut to rank {rank}
        </button>
      </div>
      <div aria-live="polite" data-testid="rank-cut-status">
        {view.state === 'running' && <p aria-busy="true">{view.what}</p>}
        {view.state === 'cut' && <p>Added {view.name} to the library.</p>}
      </div>
      {points.length > 0 && <RankTable points={points} chosen={rank} />}
      {view.state === 'failed' && <MessageLines text={view.message} testId="rank-cut-error" />}
    </div>
  );
}

/** Size and perplexity by rank, the chosen one marked. */
function RankTable({ points, chosen }: { points: readonly RankPoint[]; chosen: number }) {
  return (
    <table className="rank-table" data-testid="rank-cut-table">
      <thead>
        <tr>
          <th scope="col">rank</th>
          <th scope="col">size</th>
          <th scope="col">perplexity</th>
        </tr>
      </thead>
      <tbody>
        {points.map((p) => (
          <tr key={p.rank} aria-current={p.rank === chosen ? 'true' : undefined}>
            <td>{p.rank}</td>
            <td>{formatBytes(p.bytes)}</td>
            <td>{p.perplexity === null ? '—' : p.perplexity.toFixed(2)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
