// The frame the studio's line charts share (training loss, weight sweep): drawing coordinates
// (the SVG scales to its card), round tick values, and the grid and axes with their labels.

export const CHART_WIDTH = 560;
export const CHART_HEIGHT = 220;
export const MARGIN = { top: 12, right: 14, bottom: 36, left: 48 };
export const PLOT_W = CHART_WIDTH - MARGIN.left - MARGIN.right;
export const PLOT_H = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;

/** About `count` round values (1, 2 or 5 × 10ⁿ apart) covering [min, max]. */
export function niceTicks(min: number, max: number, count: number): number[] {
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

/** A y axis over values from `low` to `high`: round ticks, padded so a flat curve shows a band. */
export function valueAxis(low: number, high: number) {
  const pad = high > low ? (high - low) * 0.08 : Math.max(Math.abs(high) * 0.05, 0.05);
  const ticks = niceTicks(low - pad, high + pad, 4);
  const min = Math.min(low - pad, ticks[0]);
  const max = Math.max(high + pad, ticks[ticks.length - 1]);
  const y = (value: number) => MARGIN.top + (1 - (value - min) / (max - min)) * PLOT_H;
  return { ticks, y };
}

/** Grid lines at the y ticks, both axes, their tick labels and titles. */
export function ChartAxes({
  yTicks,
  y,
  xTicks,
  x,
  xTitle,
  yTitle,
}: {
  yTicks: readonly number[];
  y: (value: number) => number;
  xTicks: readonly number[];
  x: (value: number) => number;
  xTitle: string;
  yTitle: string;
}) {
  const bottom = MARGIN.top + PLOT_H;
  return (
    <>
      <g className="chart-grid">
        {yTicks.map((t) => (
          <line key={t} x1={MARGIN.left} x2={CHART_WIDTH - MARGIN.right} y1={y(t)} y2={y(t)} />
        ))}
      </g>
      <g className="chart-axis">
        <line x1={MARGIN.left} x2={CHART_WIDTH - MARGIN.right} y1={bottom} y2={bottom} />
        <line x1={MARGIN.left} x2={MARGIN.left} y1={MARGIN.top} y2={bottom} />
        {yTicks.map((t) => (
          <text key={t} x={MARGIN.left - 6} y={y(t)} textAnchor="end" dominantBaseline="middle">
            {+t.toPrecision(3)}
          </text>
        ))}
        {xTicks.map((t) => (
          <text key={t} x={x(t)} y={bottom + 14} textAnchor="middle">
            {t}
          </text>
        ))}
        <text x={MARGIN.left + PLOT_W / 2} y={CHART_HEIGHT - 4} textAnchor="middle">
          {xTitle}
        </text>
        <text
          x={12}
          y={MARGIN.top + PLOT_H / 2}
          textAnchor="middle"
          transform={`rotate(-90 12 ${MARGIN.top + PLOT_H / 2})`}
        >
          {yTitle}
        </text>
      </g>
    </>
  );
}
