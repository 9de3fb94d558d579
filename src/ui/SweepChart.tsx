import type { SweepPoint } from '../worker/api.ts';
import {
  CHART_HEIGHT,
  CHART_WIDTH,
  ChartAxes,
  MARGIN,
  PLOT_H,
  PLOT_W,
  valueAxis,
} from './chart-axes.tsx';

/** Series colours cycle through this many (styles/merge-report.css: .series-0 …). */
const SERIES_COLOURS = 4;

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The weight whose mean loss over the eval texts is lowest. */
function bestPoint(points: readonly SweepPoint[], names: readonly string[]): SweepPoint {
  const meanLoss = (p: SweepPoint) => mean(names.map((n) => p.losses[n].loss));
  return points.reduce((best, p) => (meanLoss(p) < meanLoss(best) ? p : best));
}

/** Loss on each eval text against the weight given to every source at once. */
export function SweepChart({ points }: { points: readonly SweepPoint[] }) {
  const first = points.at(0);
  if (!first) return null;
  const names = Object.keys(first.losses);
  const best = bestPoint(points, names);
  const values = points.flatMap((p) => names.map((n) => p.losses[n].loss));
  const { ticks: yTicks, y } = valueAxis(Math.min(...values), Math.max(...values));
  const weights = points.map((p) => p.weight);
  const [xMin, xMax] = [Math.min(...weights), Math.max(...weights)];
  const x = (w: number) => MARGIN.left + ((w - xMin) / (xMax - xMin || 1)) * PLOT_W;
  const path = (name: string) =>
    points
      .map(
        (p, i) =>
          `${i === 0 ? 'M' : 'L'}${x(p.weight).toFixed(1)},${y(p.losses[name].loss).toFixed(1)}`,
      )
      .join(' ');
  const label = `Weight sweep: ${names
    .map((n) => `${n} from ${first.losses[n].loss.toFixed(3)} at weight ${first.weight}`)
    .join('; ')}; the lowest mean loss is at weight ${best.weight}.`;
  return (
    <figure className="loss-chart sweep-chart">
      <svg
        viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`}
        role="img"
        aria-label={label}
        tabIndex={0}
        data-testid="sweep-chart"
        data-best-weight={best.weight}
      >
        <ChartAxes
          yTicks={yTicks}
          y={y}
          xTicks={weights}
          x={x}
          xTitle="weight of every source"
          yTitle="loss"
        />
        <g className="sweep-best">
          <line x1={x(best.weight)} x2={x(best.weight)} y1={MARGIN.top} y2={MARGIN.top + PLOT_H} />
          <text x={x(best.weight) + 4} y={MARGIN.top + 10}>
            best {best.weight}
          </text>
        </g>
        {names.map((n, i) => (
          <g key={n} className={`sweep-series series-${i % SERIES_COLOURS}`}>
            <path d={path(n)} />
            {points.map((p) => (
              <circle
                key={p.weight}
                cx={x(p.weight)}
                cy={y(p.losses[n].loss)}
                r={p === best ? 4.5 : 2.5}
              />
            ))}
          </g>
        ))}
      </svg>
      <figcaption className="legend sweep-legend">
        {names.map((n, i) => (
          <span key={n} className={`series-${i % SERIES_COLOURS}`}>
            eval text of {n}
          </span>
        ))}
        <span className="legend-best">lowest mean loss</span>
      </figcaption>
    </figure>
  );
}
