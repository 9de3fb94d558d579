import type { AdapterComparison } from '../worker/api.ts';
import { useComposeStore } from './compose-store.ts';
import { formatCell, HeatCell } from './HeatCell.tsx';
import { MessageLines } from './MessageLines.tsx';

/** How alike the board's adapters are: the cosine matrix, and one pair layer by layer. */
export function SimilarityView({ adapters }: { adapters: number }) {
  const comparison = useComposeStore((s) => s.comparison);
  return (
    <div className="compose-card" data-testid="similarity">
      <h3>Similarity</h3>
      {adapters < 2 ? (
        <p className="muted">Put two or more adapters on the board to compare them.</p>
      ) : comparison.state === 'running' ? (
        <p className="busy" aria-busy="true">
          <span className="spinner" aria-hidden="true" /> Comparing the adapters…
        </p>
      ) : comparison.state === 'failed' ? (
        <MessageLines text={comparison.message} testId="similarity-error" />
      ) : comparison.state === 'done' ? (
        <>
          <SimilarityMatrix comparison={comparison.result.comparison} />
          <PairDetails comparison={comparison.result.comparison} />
        </>
      ) : null}
    </div>
  );
}

/** Cosines of the adapters' whole ΔW; a cell off the diagonal picks the pair shown below. */
function SimilarityMatrix({ comparison }: { comparison: AdapterComparison }) {
  const pair = useComposeStore((s) => s.pair);
  const selectPair = useComposeStore((s) => s.selectPair);
  const names = comparison.adapters.map((a) => a.name);
  const pairIndex = (i: number, j: number) =>
    comparison.pairs.findIndex((p) => p.first === Math.min(i, j) && p.second === Math.max(i, j));
  return (
    <table className="heat-table similarity-matrix" data-testid="similarity-matrix">
      <caption className="muted">Cosine of ΔW: 1 same direction, 0 unrelated, −1 opposite</caption>
      <thead>
        <tr>
          <th scope="col">
            <span className="visually-hidden">adapter</span>
          </th>
          {names.map((name, j) => (
            <th key={j} scope="col" title={name}>
              {j + 1}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {comparison.similarity.map((row, i) => (
          <tr key={i}>
            <th scope="row" title={names[i]}>
              {i + 1} {names[i]}
            </th>
            {row.map((value, j) => {
              const p = pairIndex(i, j);
              return (
                <HeatCell key={j} value={value}>
                  {i === j ? (
                    formatCell(value)
                  ) : (
                    <button
                      type="button"
                      className="cell-button"
                      aria-pressed={p === pair}
                      aria-label={`${formatCell(value)}: ${names[i]} and ${names[j]} layer by layer`}
                      onClick={() => {
                        selectPair(p);
                      }}
                    >
                      {formatCell(value)}
                    </button>
                  )}
                </HeatCell>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const percent = (share: number | null) =>
  share === null ? 'none shared' : `${(share * 100).toFixed(1)} %`;

/** The chosen pair's figures and its cosine per layer and module type. */
function PairDetails({ comparison }: { comparison: AdapterComparison }) {
  const index = useComposeStore((s) => s.pair);
  const pair = comparison.pairs.at(index);
  if (!pair) return null;
  const [first, second] = [comparison.adapters[pair.first], comparison.adapters[pair.second]];
  return (
    <div className="pair-details" data-testid="pair-details">
      <h4>
        {first.name} and {second.name}
      </h4>
      <dl className="facts pair-facts">
        <dt>Cosine</dt>
        <dd>{pair.cosine.toFixed(3)}</dd>
        <dt title="Mean cos² of the principal angles between the column spaces: 1 when one contains the other">
          Subspace overlap
        </dt>
        <dd>{pair.meanOverlap === null ? '—' : pair.meanOverlap.toFixed(3)}</dd>
        <dt title="Entries both change whose signs differ: what TIES's sign election resolves">
          Sign conflicts
        </dt>
        <dd>{percent(pair.signConflict)}</dd>
      </dl>
      <div className="heat-scroll">
        <table className="heat-table" data-testid="pair-heatmap">
          <caption className="muted">Cosine per layer and module</caption>
          <thead>
            <tr>
              <th scope="col">layer</th>
              {comparison.moduleTypes.map((m) => (
                <th key={m} scope="col">
                  {m}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {pair.grid.map((row, layer) => (
              <tr key={layer}>
                <th scope="row">{layer}</th>
                {row.map((value, c) => (
                  <HeatCell
                    key={c}
                    value={value}
                    title={`layer ${layer} ${comparison.moduleTypes[c]}: ${value === null ? 'in neither adapter' : value.toFixed(4)}`}
                  />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
