import type { AdapterComparison } from '../worker/api.ts';

export type ModuleSpectrum = AdapterComparison['modules'][number]['adapters'][number];

// The drawing's own coordinates, as LossChart's; the SVG scales to its container's width.
const WIDTH = 560;
const HEIGHT = 220;
const MARGIN = { top: 12, right: 52, bottom: 36, left: 52 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
/** Singular values below max·FLOOR are drawn at the floor: a log axis has no zero. */
const FLOOR = 1e-6;
/** Shares of ‖ΔW‖² marked on the right axis. */
const ENERGY_TICKS = [0, 0.5, 0.9, 1];
/** At most this many index labels under the bars. */
const X_LABELS = 16;

/** 10ⁿ as people write it: 0.01, 1, 100, else 1e-5. */
function power(n: number): string {
  return Math.abs(n) <= 3 ? String(+(10 ** n).toPrecision(1)) : `1e${n}`;
}

/** Σ_{j ≤ i} σⱼ² / Σ σⱼ²: the share of ‖ΔW‖²_F the first i + 1 directions hold. */
function cumulativeEnergy(values: readonly number[]): number[] {
  const total = values.reduce((sum, v) => sum + v * v, 0);
  let sum = 0;
  return values.map((v) => (sum += v * v) / total);
}

/**
 * One module's singular values as bars on a log scale, with the cumulative share of ‖ΔW‖² as a
 * line on a 0–100 % axis: how many directions the adapter really uses there.
 */
export function SpectrumChart({ path, spectrum }: { path: string; spectrum: ModuleSpectrum }) {
  const values = spectrum.singularValues;
  const largest = values.length > 0 ? values[0] : 0;
  if (!(largest > 0))
    return (
      <p className="muted" data-testid="spectrum-empty">
        ΔW is zero on {path}: it has no spectrum.
      </p>
    );
  const smallest = Math.max(values[values.length - 1], largest * FLOOR);
  const top = Math.ceil(Math.log10(largest));
  const bottom = Math.min(Math.floor(Math.log10(smallest)), top - 1);
  const decadeStep = Math.ceil((top - bottom) / 5);
  const decades = Array.from(
    { length: Math.floor((top - bottom) / decadeStep) + 1 },
    (_, i) => top - i * decadeStep,
  );
  const band = PLOT_W / values.length;
  const center = (i: number) => MARGIN.left + (i + 0.5) * band;
  const yLog = (v: number) =>
    MARGIN.top +
    (1 - (Math.log10(Math.max(v, largest * FLOOR)) - bottom) / (top - bottom)) * PLOT_H;
  const yShare = (share: number) => MARGIN.top + (1 - share) * PLOT_H;
  const energy = cumulativeEnergy(values);
  const labelEvery = Math.ceil(values.length / X_LABELS);
  const line = energy
    .map((e, i) => `${i === 0 ? 'M' : 'L'}${center(i).toFixed(1)},${yShare(e).toFixed(1)}`)
    .join(' ');
  const label = `Singular values of ${path}: ${values.length}, from ${largest.toPrecision(3)} to ${values[values.length - 1].toPrecision(3)}; ${spectrum.effectiveRank90} hold 90 % of ‖ΔW‖², ${spectrum.effectiveRank99} hold 99 %.`;
  return (
    <figure className="loss-chart spectrum-chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={label}
        tabIndex={0}
        data-testid="spectrum-chart"
        data-values={values.length}
      >
        <g className="chart-grid">
          {decades.map((n) => (
            <line
              key={n}
              x1={MARGIN.left}
              x2={WIDTH - MARGIN.right}
              y1={yLog(10 ** n)}
              y2={yLog(10 ** n)}
            />
          ))}
        </g>
        <g className="spectrum-bars">
          {values.map((v, i) => (
            <rect
              key={i}
              x={center(i) - band * 0.35}
              width={band * 0.7}
              y={yLog(v)}
              height={MARGIN.top + PLOT_H - yLog(v)}
            >
              <title>
                σ{i + 1} = {v.toPrecision(4)}, {(energy[i] * 100).toFixed(1)} % of ‖ΔW‖² so far
              </title>
            </rect>
          ))}
        </g>
        <g className="spectrum-energy">
          <path d={line} />
          {energy.map((e, i) => (
            <circle key={i} cx={center(i)} cy={yShare(e)} r={3} />
          ))}
        </g>
        <g className="chart-axis">
          <line
            x1={MARGIN.left}
            x2={WIDTH - MARGIN.right}
            y1={MARGIN.top + PLOT_H}
            y2={MARGIN.top + PLOT_H}
          />
          <line x1={MARGIN.left} x2={MARGIN.left} y1={MARGIN.top} y2={MARGIN.top + PLOT_H} />
          <line
            x1={WIDTH - MARGIN.right}
            x2={WIDTH - MARGIN.right}
            y1={MARGIN.top}
            y2={MARGIN.top + PLOT_H}
          />
          {decades.map((n) => (
            <text
              key={n}
              x={MARGIN.left - 6}
              y={yLog(10 ** n)}
              textAnchor="end"
              dominantBaseline="middle"
            >
              {power(n)}
            </text>
          ))}
          {ENERGY_TICKS.map((share) => (
            <text
              key={share}
              x={WIDTH - MARGIN.right + 6}
              y={yShare(share)}
              dominantBaseline="middle"
            >
              {share * 100} %
            </text>
          ))}
          {values.map(
            (_, i) =>
              i % labelEvery === 0 && (
                <text key={i} x={center(i)} y={MARGIN.top + PLOT_H + 14} textAnchor="middle">
                  {i + 1}
                </text>
              ),
          )}
          <text x={MARGIN.left + PLOT_W / 2} y={HEIGHT - 4} textAnchor="middle">
            singular direction
          </text>
          <text
            x={12}
            y={MARGIN.top + PLOT_H / 2}
            textAnchor="middle"
            transform={`rotate(-90 12 ${MARGIN.top + PLOT_H / 2})`}
          >
            σ (log)
          </text>
        </g>
      </svg>
      <figcaption className="legend spectrum-legend">
        <span className="legend-bars">singular value</span>
        <span className="legend-energy">cumulative share of ‖ΔW‖²</span>
      </figcaption>
    </figure>
  );
}
