import { useEffect, useState } from 'react';
import type { AdapterComparison } from '../worker/api.ts';
import { HeatCell } from './HeatCell.tsx';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';
import { SpectrumChart, type ModuleSpectrum } from './SpectrumChart.tsx';
import { shortModuleName } from './format.ts';
import { MetricButtons } from './MetricButtons.tsx';

type Module = AdapterComparison['modules'][number];

/** What the heatmap shows per module. */
const METRICS = {
  norm: { label: '‖ΔW‖_F', value: (s: ModuleSpectrum) => s.norm },
  rank90: { label: 'rank 90 %', value: (s: ModuleSpectrum) => s.effectiveRank90 },
  rank99: { label: 'rank 99 %', value: (s: ModuleSpectrum) => s.effectiveRank99 },
} as const;
type Metric = keyof typeof METRICS;

/** Three significant digits, or an exponent for a tiny norm (a few training steps in). */
function formatNorm(value: number): string {
  if (value === 0) return '0';
  return value < 0.01 ? value.toExponential(1) : String(+value.toPrecision(3));
}

const formatMetric = (metric: Metric, value: number) =>
  metric === 'norm' ? formatNorm(value) : String(value);

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
        <Inspection comparison={view.result} />
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

function Inspection({ comparison }: { comparison: AdapterComparison }) {
  const [metric, setMetric] = useState<Metric>('norm');
  const [picked, setPicked] = useState<Module | null>(null);
  return (
    <>
      <MetricButtons metrics={METRICS} value={metric} onChange={setMetric} label="Heatmap shows" />
      <ModuleHeatmap comparison={comparison} metric={metric} picked={picked} onPick={setPicked} />
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

/** "gate" for gate_proj: seven columns then fit the library's width (the full name is the title). */

/** Table rows: the layers, then one for modules outside them (lm_head) if there are any. */
function rowsOf(comparison: AdapterComparison): (number | null)[] {
  const rows: (number | null)[] = Array.from({ length: comparison.layers }, (_, l) => l);
  return comparison.modules.some((m) => m.layer === null) ? [...rows, null] : rows;
}

function ModuleHeatmap({
  comparison,
  metric,
  picked,
  onPick,
}: {
  comparison: AdapterComparison;
  metric: Metric;
  picked: Module | null;
  onPick: (module: Module) => void;
}) {
  const { label, value } = METRICS[metric];
  const byCell = new Map(comparison.modules.map((m) => [`${m.layer}/${m.type}`, m]));
  const present = comparison.modules.filter((m) => m.adapters[0].present);
  // Colours relative to the strongest module: HeatCell's scale runs from 0 to 1.
  const largest = Math.max(...present.map((m) => value(m.adapters[0])));
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
                const spectrum = module?.adapters[0];
                if (!module || !spectrum?.present) return <HeatCell key={type} value={null} />;
                const shown = value(spectrum);
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
