import type { HistoryPoint } from '../worker/api.ts';
import {
  CHART_HEIGHT,
  CHART_WIDTH,
  ChartAxes,
  MARGIN,
  niceTicks,
  PLOT_W,
  valueAxis,
} from './chart-axes.tsx';

interface Series {
  step: number;
  value: number;
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
  const { ticks: yTicks, y } = valueAxis(low, high);
  const x = (step: number) => MARGIN.left + (step / xMax) * PLOT_W;
  const path = (points: Series[]) =>
    points
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`)
      .join(' ');
  const xTicks = niceTicks(0, xMax, 5).filter((t) => Number.isInteger(t));
  const lastTrain = train.at(-1);

  return (
    <figure className="loss-chart">
      <svg
        viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`}
        role="img"
        aria-label={label}
        tabIndex={0}
        data-testid="loss-chart"
        data-train-points={train.length}
        data-validation-points={validation.length}
      >
        <ChartAxes yTicks={yTicks} y={y} xTicks={xTicks} x={x} xTitle="step" yTitle="loss" />
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
