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

/** One curve over the steps: a solid line with its last point marked, or dashed with every point. */
interface Curve {
  /** As the legend and the chart's label say it. */
  name: string;
  points: Series[];
  style: 'train' | 'validation';
}

type SeriesKey = 'loss' | 'valLoss' | 'orthonormality';

function series(history: readonly HistoryPoint[], key: SeriesKey): Series[] {
  return history.flatMap((h) => {
    const value = h[key];
    return value === undefined ? [] : [{ step: h.step, value }];
  });
}

function describe({ name, points }: Curve, digits: (v: number) => string): string {
  if (points.length === 0) return `no ${name} yet`;
  const first = points[0];
  const last = points[points.length - 1];
  if (points.length === 1) return `${name} ${digits(first.value)} at step ${first.step}`;
  return `${name} from ${digits(first.value)} at step ${first.step} to ${digits(last.value)} at step ${last.step}`;
}

/** Curves over a run's steps as an SVG line chart, on the studio's chart frame. */
function StepChart({
  curves,
  totalSteps,
  title,
  yTitle,
  digits,
  testId,
}: {
  curves: readonly Curve[];
  totalSteps: number;
  /** What the chart shows, opening its accessible label. */
  title: string;
  yTitle: string;
  digits: (value: number) => string;
  testId: string;
}) {
  const values = curves.flatMap((c) => c.points.map((p) => p.value));
  const label = `${title} over ${totalSteps} steps: ${curves.map((c) => describe(c, digits)).join('; ')}.`;
  const lastStep = Math.max(1, ...curves.flatMap((c) => c.points.map((p) => p.step)));
  const xMax = Math.max(totalSteps, lastStep);
  const low = values.length > 0 ? Math.min(...values) : 0;
  const high = values.length > 0 ? Math.max(...values) : 1;
  const { ticks: yTicks, y } = valueAxis(low, high);
  const x = (step: number) => MARGIN.left + (step / xMax) * PLOT_W;
  const path = (points: Series[]) =>
    points
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`)
      .join(' ');
  const xTicks = niceTicks(0, xMax, 5).filter((t) => Number.isInteger(t));
  const counts = Object.fromEntries(curves.map((c) => [`data-${c.style}-points`, c.points.length]));
  return (
    <figure className="loss-chart">
      <svg
        viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`}
        role="img"
        aria-label={label}
        tabIndex={0}
        data-testid={testId}
        {...counts}
      >
        <ChartAxes yTicks={yTicks} y={y} xTicks={xTicks} x={x} xTitle="step" yTitle={yTitle} />
        {curves.map(({ name, points, style }) => {
          const last = points.at(-1);
          const dots = style === 'train' ? (last ? [last] : []) : points;
          return (
            <g key={name}>
              {points.length > 1 && <path className={`chart-${style}`} d={path(points)} />}
              {dots.map((p) => (
                <circle
                  key={p.step}
                  className={`chart-${style}-dot`}
                  cx={x(p.step)}
                  cy={y(p.value)}
                  r={style === 'train' ? 3 : 4}
                />
              ))}
            </g>
          );
        })}
      </svg>
      <figcaption className="legend">
        {curves.map((c) => (
          <span key={c.name} className={`legend-${c.style}`}>
            {c.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** Training loss per step and validation loss at each evaluation. */
export function LossChart({
  history,
  totalSteps,
  testId = 'loss-chart',
}: {
  history: readonly HistoryPoint[];
  totalSteps: number;
  testId?: string;
}) {
  return (
    <StepChart
      curves={[
        { name: 'training loss', points: series(history, 'loss'), style: 'train' },
        { name: 'validation loss', points: series(history, 'valLoss'), style: 'validation' },
      ]}
      totalSteps={totalSteps}
      title="Loss chart"
      yTitle="loss"
      digits={(v) => v.toFixed(3)}
      testId={testId}
    />
  );
}

/**
 * SORSA's orthonormality error per step (mean ‖BᵀB − I‖_F, ‖A·Aᵀ − I‖_F): how far training
 * pulls the singular vectors from orthonormal against the regulariser. Drawn once a run reports it.
 */
export function OrthonormalityChart({
  history,
  totalSteps,
}: {
  history: readonly HistoryPoint[];
  totalSteps: number;
}) {
  const points = series(history, 'orthonormality');
  if (points.length === 0) return null;
  return (
    <StepChart
      curves={[{ name: 'orthonormality error', points, style: 'train' }]}
      totalSteps={totalSteps}
      title="Orthonormality error"
      yTitle="‖Gram − I‖"
      digits={(v) => v.toExponential(2)}
      testId="orthonormality-chart"
    />
  );
}
