import { proxy } from 'comlink';
import { useEffect, useState } from 'react';
import { errorMessage } from '../errors.ts';
import { INTRUDER_DEFAULTS, type AdapterComparison } from '../worker/api.ts';
import { studioApi } from './gpu-store.ts';
import { HeatCell } from './HeatCell.tsx';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';
import { SpectrumChart, type ModuleSpectrum } from './SpectrumChart.tsx';
import { shortModuleName } from './format.ts';
import { MetricButtons } from './MetricButtons.tsx';

type Module = AdapterComparison['modules'][number];

/**
 * What the heatmap shows per module: figures of ΔW's spectrum, or the intruder dimensions of
 * W + ΔW against the loaded model's W (measured when first shown: they need its weights).
 */
const METRICS = {
  norm: { label: '‖ΔW‖_F', spectral: (s: ModuleSpectrum) => s.norm },
  rank90: { label: 'rank 90 %', spectral: (s: ModuleSpectrum) => s.effectiveRank90 },
  rank99: { label: 'rank 99 %', spectral: (s: ModuleSpectrum) => s.effectiveRank99 },
  intruders: { label: 'intruders', spectral: null },
} as const;
type Metric = keyof typeof METRICS;

/** Three significant digits, or an exponent for a tiny norm (a few training steps in). */
function formatNorm(value: number): string {
  if (value === 0) return '0';
  return value < 0.01 ? value.toExponential(1) : String(+value.toPrecision(3));
}

const formatMetric = (metric: Metric, value: number) =>
  metric === 'norm' ? formatNorm(value) : String(value);

type Intruders =
  | { state: 'measuring'; done: number; total: number }
  | { state: 'done'; counts: Map<string, number> }
  | { state: 'failed'; message: string };

/** An adapter's modules, layer by module type, and the spectrum of the one picked. */
export function AdapterInspector({ id }: { id: string }) {
  const view = useLibraryStore((s) => s.inspections[id]);
  const inspect = useLibraryStore((s) => s.inspect);
  useEffect(() => {
    void inspect(id);
  }, [id, inspect]);
  return (
    <div className="adapter-inspector" id={`inspect-${id}`} data-testid="inspector">
      {view?.state === 'done' ? (
        <Inspection id={id} comparison={view.result} />
      ) : view?.state === 'failed' ? (
        <MessageLines text={view.message} testId="inspect-error" />
      ) : (
        <p className="busy" aria-busy="true">
          <span className="spinner" aria-hidden="true" /> Computing ‖ΔW‖ and the spectra…
        </p>
      )}
    </div>
  );
}

function Inspection({ id, comparison }: { id: string; comparison: AdapterComparison }) {
  const [metric, setMetric] = useState<Metric>('norm');
  const [picked, setPicked] = useState<Module | null>(null);
  const [intruders, setIntruders] = useState<Intruders | null>(null);
  const measureIntruders = async () => {
    setIntruders({ state: 'measuring', done: 0, total: comparison.modules.length });
    try {
      const studio = studioApi();
      if (!studio) throw new Error('The engine is not ready.');
      const modules = await studio.adapterIntruders(
        id,
        proxy((done: number, total: number) => {
          setIntruders({ state: 'measuring', done, total });
        }),
      );
      setIntruders({ state: 'done', counts: new Map(modules.map((m) => [m.path, m.count])) });
    } catch (e) {
      setIntruders({ state: 'failed', message: errorMessage(e) });
    }
  };
  const { spectral } = METRICS[metric];
  const counts = intruders?.state === 'done' ? intruders.counts : null;
  const valueOf = (m: Module): number | null => {
    if (spectral) return m.adapters[0].present ? spectral(m.adapters[0]) : null;
    return counts?.get(m.path) ?? null;
  };
  return (
    <>
      <MetricButtons
        metrics={METRICS}
        value={metric}
        onChange={(m) => {
          setMetric(m);
          if (m === 'intruders' && intruders === null) void measureIntruders();
        }}
        label="Heatmap shows"
      />
      {metric === 'intruders' && <IntrudersStatus intruders={intruders} />}
      {(spectral || counts) && (
        <ModuleHeatmap
          comparison={comparison}
          metric={metric}
          valueOf={valueOf}
          picked={picked}
          onPick={setPicked}
        />
      )}
      {picked && (
        <div className="spectrum" data-testid="spectrum">
          <h4>
            {picked.path}{' '}
            <span className="muted">
              {picked.out} × {picked.in}
            </span>
          </h4>
          <SpectrumChart path={picked.path} spectrum={picked.adapters[0]} />
        </div>
      )}
    </>
  );
}

/** What the intruder count means, and how far its measurement is. */
function IntrudersStatus({ intruders }: { intruders: Intruders | null }) {
  const { k, threshold } = INTRUDER_DEFAULTS;
  return (
    <div aria-live="polite" data-testid="intruders-status">
      {intruders?.state === 'measuring' && (
        <p aria-busy="true">
          Measuring intruder dimensions: module {intruders.done + 1} of {intruders.total}…
        </p>
      )}
      {intruders?.state === 'failed' && (
        <MessageLines text={intruders.message} testId="intruders-error" />
      )}
      {intruders?.state === 'done' && (
        <p className="muted hint">
          Of the top {k} singular vectors of W + ΔW, how many match none of the base weight&apos;s
          (|cos| &lt; {threshold}): new directions, which the research ties to forgetting.{' '}
          {[...intruders.counts.values()].reduce((n, c) => n + c, 0)} in all.
        </p>
      )}
    </div>
  );
}

/** "gate" for gate_proj: seven columns then fit the library's width (the full name is the title). */

/** Table rows: the layers, then one for modules outside them (lm_head) if there are any. */
function rowsOf(comparison: AdapterComparison): (number | null)[] {
  const rows: (number | null)[] = Array.from({ length: comparison.layers }, (_, l) => l);
  return comparison.modules.some((m) => m.layer === null) ? [...rows, null] : rows;
}

function ModuleHeatmap({
  comparison,
  metric,
  valueOf,
  picked,
  onPick,
}: {
  comparison: AdapterComparison;
  metric: Metric;
  valueOf: (module: Module) => number | null;
  picked: Module | null;
  onPick: (module: Module) => void;
}) {
  const { label } = METRICS[metric];
  const byCell = new Map(comparison.modules.map((m) => [`${m.layer}/${m.type}`, m]));
  const values = comparison.modules.flatMap((m) => valueOf(m) ?? []);
  // Colours relative to the strongest module: HeatCell's scale runs from 0 to 1.
  const largest = Math.max(0, ...values);
  return (
    <div className="heat-scroll">
      <table className="heat-table inspect-heatmap" data-testid="inspect-heatmap">
        <caption className="muted">
          {label} per layer and module; click a cell for its singular values
        </caption>
        <thead>
          <tr>
            <th scope="col">layer</th>
            {comparison.moduleTypes.map((t) => (
              <th key={t} scope="col" title={t}>
                {shortModuleName(t)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rowsOf(comparison).map((layer) => (
            <tr key={layer ?? 'other'}>
              <th scope="row">{layer ?? '—'}</th>
              {comparison.moduleTypes.map((type) => {
                const module = byCell.get(`${layer}/${type}`);
                const shown = module ? valueOf(module) : null;
                if (!module || shown === null) return <HeatCell key={type} value={null} />;
                return (
                  <HeatCell key={type} value={largest > 0 ? shown / largest : 0}>
                    <button
                      type="button"
                      className="cell-button"
                      aria-pressed={module === picked}
                      aria-label={`${module.path}: ${label} ${formatMetric(metric, shown)}; show its singular values`}
                      onClick={() => {
                        onPick(module);
                      }}
                    >
                      {formatMetric(metric, shown)}
                    </button>
                  </HeatCell>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
