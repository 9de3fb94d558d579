// Route: instead of one merged ΔW, a router decides per token how much of each board adapter to
// use (docs/routing.md). It learns from the board's eval texts — three quarters of each; the rest
// measures it — with a live curve, then the playground generates through it, every token
// coloured by the adapter its gates chose.
import { ROUTING_MODES, routingMode, type LibraryItem, type RouteOutcome } from '../worker/api.ts';
import { AdapterEvalTextField } from './AdapterEvalText.tsx';
import { HeatCell } from './HeatCell.tsx';
import { boardSources, useComposeStore } from './compose-store.ts';
import { JobProgress } from './JobProgress.tsx';
import { useLibraryStore } from './library-store.ts';
import { LossChart } from './LossChart.tsx';
import { useRouteStore, type RouteSettings } from './route-store.ts';

/** The modes that route between adapters the library holds (the others train their own experts). */
const MODES = ROUTING_MODES.filter((m) => m.experts === 'adapters');

export function RouteCard() {
  const settings = useRouteStore((s) => s.settings);
  const setSettings = useRouteStore((s) => s.setSettings);
  const job = useRouteStore((s) => s.job);
  const points = useRouteStore((s) => s.points);
  const train = useRouteStore((s) => s.train);
  const stop = useRouteStore((s) => s.stop);
  const board = useComposeStore((s) => s.board);
  const evalTexts = useComposeStore((s) => s.evalTexts);
  const items = useLibraryStore((s) => s.items);
  const use = useLibraryStore((s) => s.use);
  const sources = boardSources(board, items, use);
  const onBoard = sources.flatMap(({ id }) => items.filter((item) => item.id === id));
  const running = job.state === 'running';
  const missing = onBoard.filter((item) => (evalTexts[item.id]?.trim() ?? '') === '');
  const problem =
    onBoard.length < 2
      ? 'Switch on at least two adapters on the board to route between.'
      : missing.length > 0
        ? `Paste an eval text for ${missing.map((item) => item.name).join(', ')}: the router learns from them.`
        : null;
  const entry = routingMode(settings.mode);
  return (
    <div className="compose-card route-card" data-testid="route-card">
      <h3>Route</h3>
      <p className="muted">
        Instead of one merged ΔW, a router chooses per token how much of each adapter to use. It
        learns from the adapters&apos; eval texts (three quarters of each; the rest measures it).
      </p>
      <label className="field">
        Mode
        <select
          value={settings.mode}
          disabled={running}
          data-testid="route-mode"
          onChange={(e) => {
            setSettings({ mode: e.target.value as RouteSettings['mode'] });
          }}
        >
          {MODES.map((m) => (
            <option key={m.name} value={m.name}>
              {m.label}
            </option>
          ))}
        </select>
      </label>
      <p className="method-summary">
        {entry.explanation} <span className="muted">({entry.paper})</span>
      </p>
      <div className="route-numbers">
        {settings.mode === 'token' && (
          <label className="field" title="0: every adapter, weighted softly">
            Adapters per token
            <input
              type="number"
              min={0}
              max={8}
              value={settings.topK}
              disabled={running}
              data-testid="route-top-k"
              onChange={(e) => {
                setSettings({ topK: Math.max(0, Math.round(Number(e.target.value))) });
              }}
            />
          </label>
        )}
        <label className="field">
          Steps
          <input
            type="number"
            min={1}
            max={2000}
            value={settings.steps}
            disabled={running}
            data-testid="route-steps"
            onChange={(e) => {
              setSettings({ steps: Math.max(1, Math.round(Number(e.target.value))) });
            }}
          />
        </label>
        <label className="field">
          Learning rate
          <input
            type="number"
            min={0}
            step="any"
            value={settings.lr}
            disabled={running}
            onChange={(e) => {
              setSettings({ lr: Number(e.target.value) });
            }}
          />
        </label>
      </div>
      {onBoard.length > 0 && (
        <details className="route-texts" open={missing.length > 0}>
          <summary>
            Eval texts ({onBoard.length - missing.length} of {onBoard.length})
          </summary>
          {onBoard.map((item, i) => (
            <div key={item.id}>
              <strong>{item.name}</strong>
              <AdapterEvalTextField item={item} disabled={running} testId={`route-text-${i}`} />
            </div>
          ))}
        </details>
      )}
      {problem && <p className="muted">{problem}</p>}
      <button
        type="button"
        disabled={running || problem !== null}
        data-testid="route-train"
        onClick={() => void train()}
      >
        Train router
      </button>
      {job.state === 'running' && (
        <JobProgress
          job={job}
          label="Training the router"
          unit="steps"
          testId="route-progress"
          onCancel={stop}
        />
      )}
      {points.length > 0 && (
        <LossChart history={points} totalSteps={settings.steps} testId="route-loss-chart" />
      )}
      {job.state === 'failed' && (
        <p className="error" role="alert">
          {job.message}
        </p>
      )}
      {job.state === 'done' && <RouteResult outcome={job.result} items={onBoard} />}
    </div>
  );
}

const loss = (v: number | null) => (v === null ? '—' : v.toFixed(3));

/** Each text's held-out loss without and with the router, and who its tokens went to. */
function RouteResult({ outcome, items }: { outcome: RouteOutcome; items: LibraryItem[] }) {
  const applied = useRouteStore((s) => s.applied);
  const end = useRouteStore((s) => s.end);
  const download = useRouteStore((s) => s.download);
  const downloadError = useRouteStore((s) => s.downloadError);
  const token = outcome.rows.some((r) => r.ownShare !== null);
  return (
    <div className="route-result" data-testid="route-result">
      <table className="report-table">
        <thead>
          <tr>
            <th scope="col">Held-out text of</th>
            <th scope="col">Base</th>
            <th scope="col">Routed</th>
            {token && <th scope="col">Tokens to its adapter</th>}
          </tr>
        </thead>
        <tbody>
          {outcome.rows.map((row, i) => (
            <tr key={row.id}>
              <th scope="row">
                <ExpertSwatch index={i} />{' '}
                {items.find((item) => item.id === row.id)?.name ?? row.name}
              </th>
              <td>{loss(row.base)}</td>
              <td>{loss(row.routed)}</td>
              {token && (
                <td>{row.ownShare === null ? '—' : `${Math.round(100 * row.ownShare)} %`}</td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {outcome.scales && (
        <p data-testid="route-scales">
          Learned weights:{' '}
          {outcome.experts.map((e, i) => `${e.name} × ${outcome.scales![i].toFixed(2)}`).join(', ')}
        </p>
      )}
      {outcome.layerUsage && <LayerUsage usage={outcome.layerUsage} outcome={outcome} />}
      {applied ? (
        <>
          <p className="route-applied">
            The playground generates through the router, each token coloured by the adapter it
            chose.
          </p>
          <div className="route-actions">
            <BakeRouter outcome={outcome} />
            <button type="button" data-testid="route-download" onClick={() => void download()}>
              Download router
            </button>
            <button type="button" data-testid="route-end" onClick={() => void end()}>
              End routing
            </button>
          </div>
          {downloadError && (
            <p className="error" role="alert">
              {downloadError}
            </p>
          )}
        </>
      ) : (
        <p className="muted">Routing ended: the board&apos;s composition applies again.</p>
      )}
    </div>
  );
}

/** Bakes the router into one plain LoRA in the library by its mean gates, and says what that costs. */
function BakeRouter({ outcome }: { outcome: RouteOutcome }) {
  const baked = useRouteStore((s) => s.baked);
  const bake = useRouteStore((s) => s.bake);
  const name = `router of ${outcome.experts.map((e) => e.name).join(' + ')}`;
  return (
    <>
      <button
        type="button"
        data-testid="route-bake"
        disabled={baked.state === 'running'}
        title="Each module's gates replaced by their mean over the eval texts: one plain LoRA"
        onClick={() => void bake(name)}
      >
        {baked.state === 'running' ? 'Baking…' : 'Bake to one adapter'}
      </button>
      {baked.state === 'done' && (
        <p className="route-baked" data-testid="route-baked">
          {baked.result.name} is in the library. Held-out loss routed{' '}
          {loss(baked.result.routedLoss)}, baked {loss(baked.result.bakedLoss)}.
        </p>
      )}
      {baked.state === 'failed' && (
        <p className="error" role="alert">
          {baked.message}
        </p>
      )}
    </>
  );
}

/** Where in the model each adapter's gates opened: the mean gate per layer on the held-out texts. */
function LayerUsage({ usage, outcome }: { usage: number[][]; outcome: RouteOutcome }) {
  return (
    <table className="heat-table route-usage" data-testid="route-usage">
      <caption>Mean gate per layer on the held-out texts</caption>
      <thead>
        <tr>
          <th scope="col">layer</th>
          {outcome.experts.map((e, i) => (
            <th key={e.id} scope="col">
              <ExpertSwatch index={i} /> {e.name}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {usage.map((row, layer) =>
          row.length === 0 ? null : (
            <tr key={layer}>
              <th scope="row">{layer}</th>
              {row.map((value, i) => (
                <HeatCell
                  key={i}
                  value={value}
                  title={`${outcome.experts[i].name}: ${value.toFixed(3)}`}
                />
              ))}
            </tr>
          ),
        )}
      </tbody>
    </table>
  );
}

/** The colour an adapter's tokens have in the playground. */
export function ExpertSwatch({ index }: { index: number }) {
  return <span className={`expert-swatch expert-${index % EXPERT_COLOURS}`} aria-hidden="true" />;
}

/** How many expert colours the stylesheet defines (then they repeat). */
export const EXPERT_COLOURS = 6;
