import type { HistoryPoint } from '../worker/api.ts';

// The drawing's own coordinates; the SVG scales to the panel's width.
const WIDTH = 560;
const HEIGHT = 220;
const MARGIN = { top: 10, right: 14, bottom: 36, left: 48 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;

interface Series {
  step: number;
  value: number;
}

/** About `count` round values (1, 2 or 5 × 10ⁿ apart) covering [min, max]. */
function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) {
    ticks.push(+t.toPrecision(12));
  }
  return ticks;
}

function series(history: readonly HistoryPoint[], key: 'loss' | 'valLoss'): Series[] {
  return history.flatMap((h) => {
    const value = h[key];
    return value === undefined ? [] : [{ step: h.step, value }];
  });
}

function describe(name: string, points: Series[]): string {
  if (points.length === 0) return `no ${name} yet`;
  const first = points[0];
  const last = points[points.length - 1];
  if (points.length === 1) return `${name} ${first.value.toFixed(3)} at step ${first.step}`;
  return `${name} from ${first.value.toFixed(3)} at step ${first.step} to ${last.value.toFixed(3)} at step ${last.step}`;
}

/** Training loss per step and validation loss at each evaluation, as an SVG line chart. */
export function LossChart({
  history,
  totalSteps,
}: {
  history: readonly HistoryPoint[];
  totalSteps: number;
}) {
  const train = series(history, 'loss');
  const validation = series(history, 'valLoss');
  const values = [...train, ...validation].map((p) => p.value);
  const label = `Loss chart over ${totalSteps} steps: ${describe('training loss', train)}; ${describe('validation loss', validation)}.`;

  const lastStep = history.reduce((m, h) => Math.max(m, h.step), 0);
  const xMax = Math.max(totalSteps, lastStep, 1);
  const low = values.length > 0 ? Math.min(...values) : 0;
  const high = values.length > 0 ? Math.max(...values) : 1;
  // A flat curve still gets a visible band around it.
  const pad = high > low ? (high - low) * 0.08 : Math.max(Math.abs(high) * 0.05, 0.05);
  const yTicks = niceTicks(low - pad, high + pad, 4);
  const yMin = Math.min(low - pad, yTicks[0]);
  const yMax = Math.max(high + pad, yTicks[yTicks.length - 1]);
  const x = (step: number) => MARGIN.left + (step / xMax) * PLOT_W;
  const y = (value: number) => MARGIN.top + (1 - (value - yMin) / (yMax - yMin)) * PLOT_H;
  const path = (points: Series[]) =>
    points
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`)
      .join(' ');
  const xTicks = niceTicks(0, xMax, 5).filter((t) => Number.isInteger(t));
  const lastTrain = train.at(-1);

  return (
    <figure className="loss-chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={label}
        tabIndex={0}
        data-testid="loss-chart"
        data-train-points={train.length}
        data-validation-points={validation.length}
      >
        <g className="chart-grid">
          {yTicks.map((t) => (
            <line key={t} x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y(t)} y2={y(t)} />
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
          {yTicks.map((t) => (
            <text key={t} x={MARGIN.left - 6} y={y(t)} textAnchor="end" dominantBaseline="middle">
              {+t.toPrecision(3)}
            </text>
          ))}
          {xTicks.map((t) => (
            <text key={t} x={x(t)} y={MARGIN.top + PLOT_H + 14} textAnchor="middle">
              {t}
            </text>
          ))}
          <text x={MARGIN.left + PLOT_W / 2} y={HEIGHT - 4} textAnchor="middle">
            step
          </text>
          <text
            x={12}
            y={MARGIN.top + PLOT_H / 2}
            textAnchor="middle"
            transform={`rotate(-90 12 ${MARGIN.top + PLOT_H / 2})`}
          >
            loss
          </text>
        </g>
        {train.length > 1 && <path className="chart-train" d={path(train)} />}
        {lastTrain && (
          <circle
            className="chart-train-dot"
            cx={x(lastTrain.step)}
            cy={y(lastTrain.value)}
            r={3}
          />
        )}
        {validation.length > 1 && <path className="chart-validation" d={path(validation)} />}
        {validation.map((p) => (
          <circle
            key={p.step}
            className="chart-validation-dot"
            cx={x(p.step)}
            cy={y(p.value)}
            r={4}
          />
        ))}
      </svg>
      <figcaption className="legend">
        <span className="legend-train">training loss</span>
        <span className="legend-validation">validation loss</span>
      </figcaption>
    </figure>
  );
}
