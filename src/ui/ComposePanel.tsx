// Compose: adapters side by side with their run-time weights, how alike they are, what they
// write alone and together, the merge that bakes the composition into one adapter, and the
// router that composes them token by token instead.
//
// A board of cards, not a node graph: every control is a plain form control, so keyboard and
// screen reader use come for free; it needs no graph library; and a row of cards fits a 1280-px
// screen, where nodes and wires would need a canvas to pan. A composition is a weighted sum with
// no topology for a graph to show.
import { useEffect } from 'react';
import type { LibraryItem } from '../worker/api.ts';
import { BakeResult } from './BakeResult.tsx';
import { boardItems, useComposeStore } from './compose-store.ts';
import { formatWeight } from './format.ts';
import { engineReady, useGpuStore } from './gpu-store.ts';
import { LayerGridEditor } from './LayerGridEditor.tsx';
import {
  activeAdapters,
  DEFAULT_USE,
  useLibraryStore,
  WEIGHT_MAX,
  WEIGHT_MIN,
} from './library-store.ts';
import { LivePreview } from './LivePreview.tsx';
import { MergeCard } from './MergeCard.tsx';
import { MergeReportView } from './MergeReportView.tsx';
import { RouteCard } from './RouteCard.tsx';
import { UseError } from './UseError.tsx';
import { useModelStore } from './model-store.ts';
import { OpenedLinkBanner, ShareLinkControl } from './ShareLink.tsx';
import { SimilarityView } from './SimilarityMatrix.tsx';

const WEIGHT_STEP = 0.05;

export function ComposePanel() {
  const ready = useGpuStore((s) => engineReady(s.status));
  const layers = useModelStore((s) => s.model.info?.config.numLayers);
  const items = useLibraryStore((s) => s.items);
  const board = useComposeStore((s) => s.board);
  const bake = useComposeStore((s) => s.bake);
  const onBoard = boardItems(board, items);
  useComposeJobs(onBoard);
  if (!ready) return null;
  return (
    <section className="panel compose" data-testid="compose">
      <h2>Compose</h2>
      <p className="muted compose-intro">
        Adapters on the board apply to the model at run time, W x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x, in the
        playground too: no merge needed to try a mix. Bake it into one adapter when it is right.
      </p>
      <OpenedLinkBanner />
      <AdapterPicker items={items} board={board} />
      <div className="compose-row">
        <AdapterBoard items={onBoard} />
        <SimilarityView adapters={onBoard.length} />
      </div>
      <LivePreview />
      <div className="compose-row">
        <MergeCard />
        {layers !== undefined && <LayerGridEditor layers={layers} />}
        <ShareLinkControl />
      </div>
      <div className="compose-row">
        <RouteCard />
      </div>
      {bake.state === 'done' && (
        <>
          <BakeResult baked={bake.result} />
          <MergeReportView baked={bake.result} />
        </>
      )}
    </section>
  );
}

/** Re-runs the slow jobs when what they depend on changes: comparison and live preview. */
function useComposeJobs(onBoard: readonly LibraryItem[]) {
  const requestComparison = useComposeStore((s) => s.requestComparison);
  const compositionChanged = useComposeStore((s) => s.compositionChanged);
  const ready = useGpuStore((s) => engineReady(s.status));
  const boardKey = onBoard.map((item) => item.id).join('\n');
  useEffect(() => {
    if (ready) requestComparison(boardKey === '' ? [] : boardKey.split('\n'));
  }, [ready, boardKey, requestComparison]);
  const items = useLibraryStore((s) => s.items);
  const use = useLibraryStore((s) => s.use);
  const compositionKey = activeAdapters(items, use)
    .map(({ item, weight }) => `${item.id}:${weight}`)
    .join(' ');
  useEffect(() => {
    compositionChanged();
  }, [compositionKey, compositionChanged]);
}

/** Which library adapters are on the board. */
function AdapterPicker({ items, board }: { items: LibraryItem[]; board: string[] }) {
  const choose = useComposeStore((s) => s.choose);
  if (items.length === 0)
    return (
      <p className="muted">Train or import adapters: the library&apos;s adapters show here.</p>
    );
  return (
    <fieldset className="compose-picker" data-testid="compose-picker">
      <legend>On the board</legend>
      {items.map((item) => (
        <label key={item.id} className="check picker-chip">
          <input
            type="checkbox"
            checked={board.includes(item.id)}
            onChange={(e) => {
              choose(item.id, e.target.checked);
            }}
          />
          {item.name}
        </label>
      ))}
    </fieldset>
  );
}

/** The chosen adapters, each a card: everything applied is here (compose-store keeps it so). */
function AdapterBoard({ items }: { items: LibraryItem[] }) {
  return (
    <div className="compose-card board" data-testid="board">
      <h3>Board</h3>
      {items.length === 0 ? (
        <p className="muted">Tick adapters above to put them on the board.</p>
      ) : (
        <ol className="board-cards">
          {items.map((item, i) => (
            <BoardCard key={item.id} item={item} position={i + 1} />
          ))}
        </ol>
      )}
    </div>
  );
}

/** One adapter: its switch and weight in the run-time composition (the library's own state). */
function BoardCard({ item, position }: { item: LibraryItem; position: number }) {
  const use = useLibraryStore((s) => s.use[item.id] ?? DEFAULT_USE);
  const setUse = useLibraryStore((s) => s.setUse);
  const setWeight = useLibraryStore((s) => s.setWeight);
  const choose = useComposeStore((s) => s.choose);
  return (
    <li className={use.on ? 'board-card on' : 'board-card'} data-testid="board-card">
      <div className="board-card-title">
        <span className="position" title="Order in the merge (SLERP's ends, OPCM's sequence)">
          {position}
        </span>
        <strong title={item.name}>{item.name}</strong>
        <button
          type="button"
          className="icon-button"
          aria-label={`Take ${item.name} off the board`}
          onClick={() => {
            choose(item.id, false);
          }}
        >
          ×
        </button>
      </div>
      <p className="muted">
        {item.details ? `rank ${item.details.rank} · ${item.details.modules} modules` : item.origin}
      </p>
      <label className="check">
        <input
          type="checkbox"
          role="switch"
          checked={use.on}
          aria-label={`Apply ${item.name} in the composition`}
          onChange={(e) => {
            setUse(item.id, e.target.checked);
          }}
        />
        {use.on ? 'On' : 'Off'}
      </label>
      <div className="board-weight">
        <input
          type="range"
          min={WEIGHT_MIN}
          max={WEIGHT_MAX}
          step={WEIGHT_STEP}
          value={use.weight}
          aria-label={`${item.name}: composition weight`}
          aria-valuetext={formatWeight(use.weight)}
          onChange={(e) => {
            setWeight(item.id, Number(e.target.value));
          }}
        />
        <input
          type="number"
          min={WEIGHT_MIN}
          max={WEIGHT_MAX}
          step={WEIGHT_STEP}
          value={use.weight}
          aria-label={`${item.name}: composition weight (number)`}
          onChange={(e) => {
            // "-" and "" on the way to "-0.5" are not numbers yet: keep the last one.
            if (e.target.value !== '') setWeight(item.id, Number(e.target.value));
          }}
        />
      </div>
      <UseError id={item.id} />
    </li>
  );
}
