import { useState } from 'react';
import { errorMessage } from '../errors.ts';
import { INTRUDER_DEFAULTS, type MergeReport } from '../worker/api.ts';
import { studioApi } from './gpu-store.ts';
import { cancelMergeJob, SWEEP_WEIGHTS, useComposeStore, type Baked } from './compose-store.ts';
import { JobProgress } from './JobProgress.tsx';
import { MessageLines } from './MessageLines.tsx';
import { SweepChart } from './SweepChart.tsx';

/** Evidence for the baked merge on held-out text: losses per source, and a weight sweep. */
export function MergeReportView({ baked }: { baked: Baked }) {
  const evalTexts = useComposeStore((s) => s.evalTexts);
  const setEvalText = useComposeStore((s) => s.setEvalText);
  const report = useComposeStore((s) => s.report);
  const sweep = useComposeStore((s) => s.sweep);
  const runReport = useComposeStore((s) => s.runReport);
  const runSweep = useComposeStore((s) => s.runSweep);
  return (
    <div className="compose-card merge-report" data-testid="merge-report">
      <h3>Merge report</h3>
      <p className="muted hint">
        Paste held-out text in each adapter&apos;s style (not its training data): the report
        measures the loss of the base, of each adapter alone and of the merge on it, and how much of
        each adapter&apos;s improvement over the base the merge keeps.
      </p>
      <div className="eval-texts">
        {baked.sources.map(({ id, name }) => (
          <label key={id}>
            Eval text for {name}
            <textarea
              rows={4}
              value={evalTexts[id] ?? ''}
              placeholder={`A few paragraphs written the way ${name} should write`}
              data-testid="eval-text"
              onChange={(e) => {
                setEvalText(id, e.target.value);
              }}
            />
          </label>
        ))}
      </div>
      <div className="controls">
        <button
          type="button"
          disabled={report.state === 'running'}
          onClick={() => void runReport()}
        >
          Run report
        </button>
        <button
          type="button"
          disabled={sweep.state === 'running'}
          title={`Losses with every source at the same weight: ${SWEEP_WEIGHTS.join(', ')}`}
          onClick={() => void runSweep()}
        >
          Sweep
        </button>
      </div>
      {report.state === 'running' && (
        <JobProgress
          job={report}
          label="Measuring"
          unit="evaluations"
          testId="report-progress"
          onCancel={cancelMergeJob}
        />
      )}
      {report.state === 'failed' && <MessageLines text={report.message} testId="report-error" />}
      {report.state === 'done' && <ReportTable report={report.result} />}
      {sweep.state === 'running' && (
        <JobProgress
          job={sweep}
          label="Sweeping"
          unit="evaluations"
          testId="sweep-progress"
          onCancel={cancelMergeJob}
        />
      )}
      {sweep.state === 'failed' && <MessageLines text={sweep.message} testId="sweep-error" />}
      {sweep.state === 'done' && <SweepChart points={sweep.result} />}
      <MergeIntruders baked={baked} />
    </div>
  );
}

type IntruderTotals =
  | { state: 'idle' }
  | { state: 'running'; name: string }
  | { state: 'done'; totals: { name: string; count: number; modules: number }[] }
  | { state: 'failed'; message: string };

/**
 * The intruder dimensions of the merge beside each source's (src/analysis/intruders.ts): new
 * directions in W + ΔW, against the loaded model's weights.
 */
function MergeIntruders({ baked }: { baked: Baked }) {
  const [view, setView] = useState<IntruderTotals>({ state: 'idle' });
  const adapters = [{ id: baked.item.id, name: `${baked.item.name} (merged)` }, ...baked.sources];
  const measure = async () => {
    try {
      const studio = studioApi();
      if (!studio) throw new Error('The engine is not ready.');
      const totals = [];
      for (const { id, name } of adapters) {
        setView({ state: 'running', name });
        const modules = await studio.adapterIntruders(id);
        totals.push({
          name,
          count: modules.reduce((n, m) => n + m.count, 0),
          modules: modules.length,
        });
      }
      setView({ state: 'done', totals });
    } catch (e) {
      setView({ state: 'failed', message: errorMessage(e) });
    }
  };
  const { k, threshold } = INTRUDER_DEFAULTS;
  return (
    <div className="merge-intruders" data-testid="merge-intruders">
      <button type="button" disabled={view.state === 'running'} onClick={() => void measure()}>
        Intruder dimensions
      </button>
      <span aria-live="polite">
        {view.state === 'running' && <span aria-busy="true"> Measuring {view.name}…</span>}
      </span>
      {view.state === 'failed' && (
        <MessageLines text={view.message} testId="merge-intruders-error" />
      )}
      {view.state === 'done' && (
        <table className="report-table" data-testid="merge-intruders-table">
          <caption className="muted">
            Of each module&apos;s top {k} singular vectors of W + ΔW, those matching none of the
            base weight&apos;s (|cos| &lt; {threshold}): new directions, tied to forgetting
          </caption>
          <thead>
            <tr>
              <th scope="col">adapter</th>
              <th scope="col">intruders</th>
              <th scope="col">modules</th>
            </tr>
          </thead>
          <tbody>
            {view.totals.map((t) => (
              <tr key={t.name}>
                <th scope="row">{t.name}</th>
                <td>{t.count}</td>
                <td>{t.modules}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

const lossText = (cell: { loss: number; perplexity: number }) => (
  <span title={`perplexity ${cell.perplexity.toFixed(2)}`}>{cell.loss.toFixed(3)}</span>
);

/** One row per eval text: the losses, and the share of its adapter's gain the merge keeps. */
function ReportTable({ report }: { report: MergeReport }) {
  const names = report.rows.map((r) => r.source);
  return (
    <div className="heat-scroll">
      <table className="report-table" data-testid="report-table">
        <caption className="muted">
          Loss in nats per token (lower is better; hover for perplexity)
        </caption>
        <thead>
          <tr>
            <th scope="col">eval text of</th>
            <th scope="col">tokens</th>
            <th scope="col">base</th>
            {names.map((n) => (
              <th key={n} scope="col">
                {n} alone
              </th>
            ))}
            <th scope="col">merged</th>
            <th scope="col">kept</th>
          </tr>
        </thead>
        <tbody>
          {report.rows.map((row) => (
            <tr key={row.source} data-testid="report-row">
              <th scope="row">{row.source}</th>
              <td>{row.tokens}</td>
              <td>{lossText(row.base)}</td>
              {names.map((n) => (
                <td key={n} className={n === row.source ? 'own' : undefined}>
                  {lossText(row.adapters[n])}
                </td>
              ))}
              <td>{lossText(row.merged)}</td>
              <td>
                <KeptBar kept={row.kept} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The kept share as a bar: full at 100 %, red below 0 (worse than the base). */
function KeptBar({ kept }: { kept: number | null }) {
  if (kept === null)
    return (
      <span className="muted" title="The adapter alone does not improve on the base here">
        —
      </span>
    );
  const width = Math.max(0, Math.min(1, kept)) * 100;
  const tone = kept < 0 ? 'bad' : kept < 0.5 ? 'warn' : 'ok';
  return (
    <span className={`kept kept-${tone}`}>
      <span className="kept-bar" aria-hidden="true">
        <span style={{ width: `${width}%` }} />
      </span>
      {(kept * 100).toFixed(0)} %
    </span>
  );
}
