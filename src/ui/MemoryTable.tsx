import {
  kvCacheBytes,
  optimiserBytes,
  trainingActivationBytes,
  type ModelPlan,
  type WeightMemory,
  type WeightPrecision,
} from '../worker/api.ts';
import { useDataStore } from './data-store.ts';
import { formatBytes } from './format.ts';
import { useTrainSettingsStore } from './train-settings-store.ts';

/** How a precision reads in the table: `file` says what the file stores. */
function precisionLabel(w: WeightMemory): string {
  return w.precision === 'file' ? `as stored (${w.dtypes.join(' + ')})` : w.precision;
}

/** Why a precision cannot be loaded here, or null: one buffer larger than the device binds. */
function refusal(w: WeightMemory, limit: number | null): string | null {
  if (limit === null || w.largest.bytes <= limit) return null;
  return `${w.largest.name} needs ${formatBytes(w.largest.bytes)} in one buffer (limit ${formatBytes(limit)})`;
}

/**
 * The model's memory at every precision the weights can be kept in, before or after loading:
 * weights, the KV cache, and for training with the Train panel's settings the activations and
 * the adapter's optimiser state. Picking a row loads the model again at that precision.
 */
export function MemoryTable({
  plan,
  current,
  busy,
  onChoose,
}: {
  plan: ModelPlan;
  /** The precision the model is loaded at (null: the load was refused). */
  current: WeightPrecision | null;
  busy: boolean;
  onChoose: (precision: WeightPrecision) => void;
}) {
  const { lora, train } = useTrainSettingsStore((s) => s.config);
  const seqLen = useDataStore((s) => s.options.seqLen);
  const shape = {
    tokens: train.batchSize * Math.min(seqLen, plan.config.maxPositions),
    rank: lora.rank,
    targets: lora.targets,
    dropout: lora.dropout,
    recompute: train.recompute,
  };
  const cache = kvCacheBytes(plan.config);
  const activations = trainingActivationBytes(plan.config, shape);
  const optimiser = optimiserBytes(plan.config, shape);
  return (
    <table className="memory-table" data-testid="memory-table">
      <caption>
        GPU memory by precision of the weights. Training: batch {train.batchSize} × {seqLen} tokens,
        rank {lora.rank}
        {train.recompute ? ', recomputing activations' : ''} (Train panel). Norms and biases stay
        f32; the KV cache is f32 at the full context.
      </caption>
      <thead>
        <tr>
          <th scope="col">Weights</th>
          <th scope="col">weights</th>
          <th scope="col">KV cache</th>
          <th scope="col">activations</th>
          <th scope="col">optimiser</th>
          <th scope="col">training total</th>
          <th scope="col" />
        </tr>
      </thead>
      <tbody>
        {plan.weights.map((w) => {
          const refused = refusal(w, plan.bufferLimit);
          const isCurrent = w.precision === current;
          return (
            <tr
              key={w.precision}
              className={isCurrent ? 'current' : refused ? 'refused' : undefined}
              data-testid={`memory-${w.precision}`}
            >
              <th scope="row">{precisionLabel(w)}</th>
              <td>{formatBytes(w.bytes)}</td>
              <td>{formatBytes(cache)}</td>
              <td>{formatBytes(activations)}</td>
              <td>{formatBytes(optimiser)}</td>
              <td>{formatBytes(w.bytes + cache + activations + optimiser)}</td>
              <td>
                {isCurrent ? (
                  <span className="muted">loaded</span>
                ) : refused ? (
                  <span className="muted" title={refused}>
                    does not fit
                  </span>
                ) : (
                  <button
                    type="button"
                    disabled={busy}
                    onClick={() => {
                      onChoose(w.precision);
                    }}
                  >
                    Load as {w.precision === 'file' ? 'stored' : w.precision}
                  </button>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
