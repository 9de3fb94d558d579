import type { SavedRunInfo } from '../worker/api.ts';
import { formatRate } from './format.ts';
import { LossChart } from './LossChart.tsx';
import { useModelStore } from './model-store.ts';
import { useTrainingStore } from './training-store.ts';

/** A run saved in this browser (stopped, failed, or cut off by a reload) that can continue. */
export function SavedRunBanner({ saved, showCurve }: { saved: SavedRunInfo; showCurve: boolean }) {
  const resume = useTrainingStore((s) => s.resumeSaved);
  const discard = useTrainingStore((s) => s.discardSaved);
  const loaded = useModelStore((s) => s.model.info?.name);
  const { lora, train } = saved.config;
  const when = new Date(saved.savedAt).toLocaleString();
  return (
    <div className="saved-run" role="region" aria-label="Saved run" data-testid="saved-run">
      <p>
        <strong>
          A run on {saved.fileName} stopped at step {saved.step} of {saved.totalSteps}
        </strong>{' '}
        <span className="muted">
          (saved {when}; {saved.baseModel}, {lora.init} rank {lora.rank}, lr {formatRate(train.lr)})
        </span>
      </p>
      {showCurve && <LossChart history={saved.history} totalSteps={saved.totalSteps} />}
      <div className="controls">
        <button
          type="button"
          disabled={!saved.matchesModel}
          aria-describedby={saved.matchesModel ? undefined : 'saved-run-why'}
          onClick={() => void resume()}
        >
          Resume
        </button>
        <button type="button" onClick={() => void discard()}>
          Discard
        </button>
      </div>
      {saved.matchesModel ? (
        <p className="muted">It continues exactly where it stopped; a new run replaces it.</p>
      ) : (
        <p className="note" id="saved-run-why">
          This run fine-tunes {saved.baseModel}, but {loaded ?? 'no model'} is loaded: load{' '}
          {saved.baseModel} to resume it.
        </p>
      )}
    </div>
  );
}
