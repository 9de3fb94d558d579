import type { SweepPoint } from '../worker/api.ts';

// The drawing's own coordinates, as LossChart's; the SVG scales to the card's width.
const WIDTH = 560;
const HEIGHT = 220;
const MARGIN = { top: 14, right: 14, bottom: 36, left: 48 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
/** Horizontal grid lines. */
const Y_TICKS = 4;
/** Series colours cycle through this many (styles.css: .series-0 …). */
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
  const low = Math.min(...values);
  const high = Math.max(...values);
  const pad = high > low ? (high - low) * 0.08 : 0.05;
  const [yMin, yMax] = [low - pad, high + pad];
  const weights = points.map((p) => p.weight);
  const [xMin, xMax] = [Math.min(...weights), Math.max(...weights)];
  const x = (w: number) => MARGIN.left + ((w - xMin) / (xMax - xMin || 1)) * PLOT_W;
  const y = (loss: number) => MARGIN.top + (1 - (loss - yMin) / (yMax - yMin)) * PLOT_H;
  const yTicks = Array.from(
    { length: Y_TICKS + 1 },
    (_, i) => yMin + ((yMax - yMin) * i) / Y_TICKS,
  );
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
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={label}
        tabIndex={0}
        data-testid="sweep-chart"
        data-best-weight={best.weight}
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
              {t.toFixed(2)}
            </text>
          ))}
          {weights.map((w) => (
            <text key={w} x={x(w)} y={MARGIN.top + PLOT_H + 14} textAnchor="middle">
              {w}
            </text>
          ))}
          <text x={MARGIN.left + PLOT_W / 2} y={HEIGHT - 4} textAnchor="middle">
            weight of every source
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
