import {
  GRID_PRESETS,
  gridPreset,
  isAttentionKind,
  modelModules,
  type GridPreset,
} from '../worker/api.ts';
import { useModelStore } from './model-store.ts';
import { fittedGrid, NEUTRAL_LINES, useComposeStore } from './compose-store.ts';
import { heatProps } from './HeatCell.tsx';

const PRESET_LABELS: Record<GridPreset, string> = {
  uniform: 'Uniform',
  ramp_up: 'Ramp up',
  ramp_down: 'Ramp down',
  attention_only: 'Attention only',
  mlp_only: 'MLP only',
};

const sameGrid = (a: readonly number[][], b: readonly number[][]) =>
  a.length === b.length && a.every((row, l) => row.every((w, c) => w === b[l][c]));

/**
 * Multipliers of the merged ΔW per layer and module type, and LiNeS depth scaling: both reach
 * the spec only when they change something.
 */
export function LayerGridEditor({ layers }: { layers: number }) {
  const stored = useComposeStore((s) => s.grid);
  const setPreset = useComposeStore((s) => s.setGridPreset);
  const setCell = useComposeStore((s) => s.setGridCell);
  const modules = modelModules(useModelStore((s) => s.model.info?.config));
  const grid =
    fittedGrid(stored, layers, modules.length) ??
    gridPreset('uniform', layers, modules, isAttentionKind).weights;
  const active = GRID_PRESETS.find((p) =>
    sameGrid(gridPreset(p, layers, modules, isAttentionKind).weights, grid),
  );
  return (
    <div className="compose-card grid-card" data-testid="layer-grid">
      <h3>Layer × module weights</h3>
      <div className="presets" role="group" aria-label="Grid presets">
        {GRID_PRESETS.map((p) => (
          <button
            key={p}
            type="button"
            aria-pressed={p === active}
            onClick={() => {
              setPreset(p, layers);
            }}
          >
            {PRESET_LABELS[p]}
          </button>
        ))}
      </div>
      <div className="heat-scroll grid-scroll">
        <table className="heat-table grid-table">
          <caption className="muted">
            Multiplies the merged ΔW of each module; all 1 leaves the merge as it is
          </caption>
          <thead>
            <tr>
              <th scope="col">layer</th>
              {modules.map((m) => (
                <th key={m} scope="col">
                  {m}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {grid.map((row, layer) => (
              <tr key={layer}>
                <th scope="row">{layer}</th>
                {row.map((w, c) => {
                  const heat = heatProps(w);
                  return (
                    <td key={c} className={heat.className} style={heat.style}>
                      <input
                        type="number"
                        step={0.1}
                        value={w}
                        aria-label={`Layer ${layer} ${modules[c]} weight`}
                        onChange={(e) => {
                          if (e.target.value !== '')
                            setCell(layer, c, Number(e.target.value), layers);
                        }}
                      />
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <LinesFields layers={layers} />
    </div>
  );
}

function LinesFields({ layers }: { layers: number }) {
  const lines = useComposeStore((s) => s.lines);
  const setLines = useComposeStore((s) => s.setLines);
  const neutral = lines.alpha === NEUTRAL_LINES.alpha && lines.beta === NEUTRAL_LINES.beta;
  const last = lines.alpha + lines.beta;
  return (
    <fieldset className="lines-fields">
      <legend>LiNeS depth scaling</legend>
      <label>
        α
        <input
          type="number"
          step={0.1}
          value={lines.alpha}
          aria-label="LiNeS alpha"
          onChange={(e) => {
            if (e.target.value !== '') setLines({ alpha: Number(e.target.value) });
          }}
        />
      </label>
      <label>
        β
        <input
          type="number"
          step={0.1}
          value={lines.beta}
          aria-label="LiNeS beta"
          onChange={(e) => {
            if (e.target.value !== '') setLines({ beta: Number(e.target.value) });
          }}
        />
      </label>
      <span className="muted hint">
        λ(ℓ) = α + β·ℓ/(L−1):{' '}
        {neutral
          ? 'every layer × 1 (off)'
          : `layer 0 × ${+lines.alpha.toFixed(3)}, layer ${layers - 1} × ${+last.toFixed(3)}`}
      </span>
    </fieldset>
  );
}
