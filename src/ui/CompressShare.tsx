import { useState } from 'react';
import { errorMessage } from '../errors.ts';
import { CURVE_DENSITIES, type CompressionPoint, type LibraryItem } from '../worker/api.ts';
import { CHART_HEIGHT, CHART_WIDTH, ChartAxes, MARGIN, PLOT_W, valueAxis } from './chart-axes.tsx';
import { AdapterEvalTextField, useAdapterEvalText } from './AdapterEvalText.tsx';
import { saveFile } from './download.ts';
import { formatBytes } from './format.ts';
import { studioApi } from './gpu-store.ts';
import { MessageLines } from './MessageLines.tsx';

type View =
  | { state: 'idle' }
  | { state: 'running'; what: string }
  | { state: 'compressed'; point: CompressionPoint; name: string; file: Uint8Array }
  | { state: 'curve'; points: CompressionPoint[] }
  | { state: 'failed'; message: string };

/** What a compression costs, in one line: "14× smaller, +0.8 % perplexity". */
export function costLine(p: CompressionPoint): string {
  const size = `${p.ratio.toFixed(1)}× smaller (${formatBytes(p.bytes)})`;
  if (!p.perplexity) return `${size}, ΔW within ${(100 * p.deltaError).toFixed(0)} %`;
  const change = 100 * (p.perplexity.compressed / p.perplexity.original - 1);
  return `${size}, ${change >= 0 ? '+' : ''}${change.toFixed(1)} % perplexity (${p.perplexity.original.toFixed(2)} → ${p.perplexity.compressed.toFixed(2)})`;
}

/**
 * "Share compressed" for one library adapter (ComPEFT, docs/sharing.md): a density, the
 * adapter's eval text (the merge report's, shared) to measure what it costs with the loaded
 * model, then the size and the cost in one line and the .compeft file to download; or the
 * size/quality curve over densities.
 */
export function CompressShare({ item }: { item: LibraryItem }) {
  const [density, setDensity] = useState(0.1);
  const [view, setView] = useState<View>({ state: 'idle' });
  // The cost is measured only with the adapter's own model loaded.
  const text = useAdapterEvalText(item);
  const running = view.state === 'running';

  const run = async (what: string, job: () => Promise<View>) => {
    if (running) return;
    setView({ state: 'running', what });
    try {
      setView(await job());
    } catch (e) {
      setView({ state: 'failed', message: errorMessage(e) });
    }
  };
  const compress = () =>
    run(`Compressing at density ${density}…`, async () => {
      const studio = studioApi();
      if (!studio) throw new Error('The engine is not ready.');
      const { name, file, ...point } = await studio.compressAdapter(item.id, density, text);
      return { state: 'compressed', point, name, file };
    });
  const curve = () =>
    run('Measuring every density…', async () => {
      const studio = studioApi();
      if (!studio) throw new Error('The engine is not ready.');
      return { state: 'curve', points: await studio.compressionCurve(item.id, text) };
    });

  return (
    <div className="compress-share" id={`compress-${item.id}`} data-testid="compress-share">
      <p className="muted hint">
        Keeps the largest entries of each factor as signs and one scale per tensor; a
        <code> .compeft</code> file imports back as a plain adapter. Give an eval text to see what
        it costs.
      </p>
      <label>
        Density{' '}
        <select
          value={density}
          disabled={running}
          data-testid="compress-density"
          onChange={(e) => {
            setDensity(Number(e.target.value));
          }}
        >
          {CURVE_DENSITIES.map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </label>
      <AdapterEvalTextField item={item} disabled={running} testId="compress-eval-text" />
      <div className="controls">
        <button type="button" disabled={running} onClick={() => void compress()}>
          Compress
        </button>
        <button type="button" disabled={running} onClick={() => void curve()}>
          Size/quality curve
        </button>
      </div>
      <div aria-live="polite" data-testid="compress-status">
        {view.state === 'running' && <p aria-busy="true">{view.what}</p>}
        {view.state === 'compressed' && (
          <p>
            Share compressed: {costLine(view.point)}{' '}
            <button
              type="button"
              onClick={() => {
                saveFile(view.name, view.file);
              }}
            >
              ⤓ {view.name}
            </button>
          </p>
        )}
      </div>
      {view.state === 'curve' && <CompressionCurve points={view.points} />}
      {view.state === 'failed' && <MessageLines text={view.message} testId="compress-error" />}
    </div>
  );
}

/** Perplexity (or, without eval text, ΔW error) against the share of entries kept. */
function CompressionCurve({ points }: { points: readonly CompressionPoint[] }) {
  const measured = points.every((p) => p.perplexity !== null);
  const value = (p: CompressionPoint) =>
    measured ? 100 * (p.perplexity!.compressed / p.perplexity!.original - 1) : 100 * p.deltaError;
  const values = points.map(value);
  const { ticks, y } = valueAxis(Math.min(0, ...values), Math.max(...values));
  // Densities span two decades: a log axis spaces them evenly.
  const logs = points.map((p) => Math.log10(p.density));
  const [lo, hi] = [Math.min(...logs), Math.max(...logs)];
  const x = (d: number) => MARGIN.left + ((Math.log10(d) - lo) / (hi - lo || 1)) * PLOT_W;
  const yTitle = measured ? 'perplexity change, %' : '‖ΔW − ΔW̃‖/‖ΔW‖, %';
  const label = points
    .map(
      (p, i) => `density ${p.density}: ${p.ratio.toFixed(1)}× smaller, ${values[i].toFixed(1)} %`,
    )
    .join('; ');
  return (
    <figure className="loss-chart compression-curve">
      <svg
        viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`}
        role="img"
        aria-label={`Size and quality: ${label}`}
        tabIndex={0}
        data-testid="compression-curve"
      >
        <ChartAxes
          yTicks={ticks}
          y={y}
          xTicks={points.map((p) => p.density)}
          x={x}
          xTitle="share of entries kept (density)"
          yTitle={yTitle}
        />
        <g className="sweep-series series-0">
          <path
            d={points
              .map(
                (p, i) =>
                  `${i === 0 ? 'M' : 'L'}${x(p.density).toFixed(1)},${y(values[i]).toFixed(1)}`,
              )
              .join(' ')}
          />
          {points.map((p, i) => (
            <g key={p.density}>
              <circle cx={x(p.density)} cy={y(values[i])} r={3} />
              <text x={x(p.density)} y={y(values[i]) - 7} textAnchor="middle" className="muted">
                {p.ratio.toFixed(0)}×
              </text>
            </g>
          ))}
        </g>
      </svg>
      <figcaption className="legend">
        Each point: the file at that density, labelled by how many times smaller than the adapter it
        is.
      </figcaption>
    </figure>
  );
}
