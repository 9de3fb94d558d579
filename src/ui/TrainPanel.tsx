import {
  TRAINING_NEEDS_WEBGPU,
  type HistoryPoint,
  type Sample,
  type TrainConfig,
  type TrainingOutcome,
} from '../worker/api.ts';
import { formatBytes, formatDuration, formatRate } from './format.ts';
import { LossChart, OrthonormalityChart } from './LossChart.tsx';
import { RunExport } from './RunExport.tsx';
import { useDataStore } from './data-store.ts';
import { useModelStore } from './model-store.ts';
import { SavedRunBanner } from './SavedRunBanner.tsx';
import { useTrainSettingsStore } from './train-settings-store.ts';
import { TrainSettingsForm } from './TrainSettingsForm.tsx';
import { useTrainingStore, type RunView } from './training-store.ts';

/** Settings, the run's controls and live view: progress, loss curve, samples, outcome. */
export function TrainPanel() {
  const model = useModelStore((s) => s.model.info);
  const run = useTrainingStore((s) => s.run);
  const saved = useTrainingStore((s) => s.saved);
  if (!model) return null;
  if (model.where === 'cpu')
    return (
      <section className="panel" data-testid="train">
        <h2>Train</h2>
        <p className="note" data-testid="train-needs-webgpu">
          {TRAINING_NEEDS_WEBGPU}
        </p>
      </section>
    );
  const running = run.state === 'running';
  return (
    <section className="panel" data-testid="train">
      <h2>Train</h2>
      {saved && !running && (
        // After a stop in this session the run's own view below already draws the curve.
        <SavedRunBanner saved={saved} showCurve={run.state === 'idle'} />
      )}
      <TrainSettingsForm disabled={running} />
      <RunControls run={run} />
      {run.state !== 'idle' && (
        <>
          {running && <RunProgress run={run} />}
          {(running || run.history.length > 0) && (
            <LossChart history={run.history} totalSteps={run.config.train.steps} />
          )}
          <OrthonormalityChart history={run.history} totalSteps={run.config.train.steps} />
          <RunFigures history={run.history} />
          {run.state === 'ended' && <Outcome outcome={run.outcome} />}
          {run.state === 'failed' && (
            <p className="error" role="alert" data-testid="train-error">
              {run.message}
            </p>
          )}
          <Samples samples={run.samples} />
        </>
      )}
      <RunExport running={running} />
    </section>
  );
}

/** Blank prompt lines are the textarea's, not prompts. */
function runnable(config: TrainConfig): TrainConfig {
  const samplePrompts = config.train.samplePrompts.filter((p) => p.trim() !== '');
  return { ...config, train: { ...config.train, samplePrompts } };
}

function RunControls({ run }: { run: RunView }) {
  const config = useTrainSettingsStore((s) => s.config);
  const data = useDataStore((s) => s.summary);
  const source = useDataStore((s) => s.source);
  const preparing = useDataStore((s) => s.preparing);
  const start = useTrainingStore((s) => s.start);
  const pause = useTrainingStore((s) => s.pause);
  const resume = useTrainingStore((s) => s.resume);
  const stop = useTrainingStore((s) => s.stop);
  if (run.state === 'running') {
    return (
      <div className="controls">
        {run.paused || run.request === 'pause' ? (
          <button type="button" onClick={() => void resume()} disabled={run.request === 'stop'}>
            Resume
          </button>
        ) : (
          <button type="button" onClick={() => void pause()} disabled={run.request === 'stop'}>
            Pause
          </button>
        )}
        <button type="button" onClick={() => void stop()} disabled={run.request === 'stop'}>
          Stop
        </button>
      </div>
    );
  }
  const ready = data !== null && source !== null && !preparing;
  return (
    <div className="controls">
      <button
        type="button"
        disabled={!ready}
        onClick={() => {
          if (source) void start(runnable(config), source.fileName);
        }}
      >
        Start training
      </button>
      {!ready && (
        <span className="muted">
          {preparing ? 'Preparing the dataset…' : 'Choose a dataset in the Data panel first.'}
        </span>
      )}
    </div>
  );
}

function RunProgress({ run }: { run: Extract<RunView, { state: 'running' }> }) {
  const { progress, metrics, request } = run;
  const total = run.config.train.steps;
  const step = progress?.step ?? run.history.at(-1)?.step ?? 0;
  const phase =
    request === 'stop'
      ? 'Stopping after this step…'
      : request === 'pause'
        ? 'Pausing after this step…'
        : run.paused
          ? 'Paused.'
          : !progress
            ? 'Starting…'
            : progress.phase === 'initialising'
              ? (progress.message ?? 'Initialising the adapter…')
              : progress.phase === 'evaluating'
                ? 'Evaluating on the validation set…'
                : 'Training…';
  return (
    <div className="run-progress" data-testid="train-progress">
      <label>
        <span>
          Step <span data-testid="train-step">{step}</span> of {total}
          {/* A paused run's time left is not running down: say paused instead. */}
          {run.paused
            ? ' · paused'
            : metrics &&
              metrics.etaSeconds > 0 &&
              ` · about ${formatDuration(metrics.etaSeconds)} left`}
        </span>
        <progress value={step} max={total} />
      </label>
      <p className="muted" aria-live="polite" data-testid="train-phase">
        {phase}
      </p>
      {metrics && (
        <dl className="facts metrics">
          <dt>Throughput</dt>
          <dd>{Math.round(metrics.tokensPerSecond).toLocaleString('en-US')} tokens/s</dd>
          <dt>GPU memory</dt>
          <dd>{formatBytes(metrics.gpuBytes)} (buffer pool)</dd>
        </dl>
      )}
    </div>
  );
}

/** The latest values of the curves: losses, gradient norm, learning rate (SORSA: orthonormality). */
function RunFigures({ history }: { history: HistoryPoint[] }) {
  const last = <K extends keyof HistoryPoint>(key: K) =>
    history.findLast((h) => h[key] !== undefined)?.[key];
  const loss = last('loss');
  const valLoss = last('valLoss');
  const gradNorm = last('gradNorm');
  const lr = last('lr');
  const orthonormality = last('orthonormality');
  if (loss === undefined && valLoss === undefined) return null;
  return (
    <dl className="facts metrics" data-testid="train-figures">
      <dt>Training loss</dt>
      <dd>{loss?.toFixed(3) ?? '—'}</dd>
      <dt>Validation loss</dt>
      <dd>{valLoss?.toFixed(3) ?? '—'}</dd>
      <dt>Gradient norm</dt>
      <dd>{gradNorm?.toFixed(3) ?? '—'}</dd>
      <dt>Learning rate</dt>
      <dd>{lr === undefined ? '—' : formatRate(lr)}</dd>
      {orthonormality !== undefined && (
        <>
          <dt>Orthonormality error</dt>
          <dd data-testid="orthonormality">{orthonormality.toExponential(2)}</dd>
        </>
      )}
    </dl>
  );
}

function Outcome({ outcome }: { outcome: TrainingOutcome }) {
  const loss = (first: number | null, last: number | null) =>
    first === null || last === null ? '—' : `${first.toFixed(3)} → ${last.toFixed(3)}`;
  const summary = `${outcome.steps} steps; training loss ${loss(outcome.trainLossFirst, outcome.trainLossLast)}, validation loss ${loss(outcome.valLossFirst, outcome.valLossLast)}; ${Math.round(outcome.tokensPerSecond)} tokens/s.`;
  const saved = outcome.adapterId ? ' The adapter is in the library.' : '';
  return (
    <div data-testid="train-outcome" role="status">
      {outcome.status === 'done' && (
        <p className="outcome-done">
          Done: {summary}
          {saved}
        </p>
      )}
      {outcome.status === 'stopped' && (
        <p>
          Stopped after {summary}
          {saved && ' The adapter so far is in the library.'}
        </p>
      )}
      {outcome.status === 'failed' && (
        <p className="error" role="alert">
          Training failed: {outcome.failure}
          {saved && ' The adapter from the last good step is in the library.'}
        </p>
      )}
    </div>
  );
}

function Samples({ samples }: { samples: Sample[] }) {
  if (samples.length === 0) return null;
  return (
    <>
      <h3>Samples</h3>
      <ul className="samples" data-testid="train-samples">
        {samples.map((s, i) => (
          <li key={i} className="output">
            <strong>{s.prompt}</strong>
            {s.text.startsWith(s.prompt) ? s.text.slice(s.prompt.length) : ` ${s.text}`}
          </li>
        ))}
      </ul>
    </>
  );
}
