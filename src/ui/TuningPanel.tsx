import { useGpuStore } from './gpu-store.ts';

/** Measures the matmul strategies on this GPU once; the choice is kept in IndexedDB. */
export function TuningPanel() {
  const status = useGpuStore((s) => s.status);
  const tuning = useGpuStore((s) => s.tuning);
  const tune = useGpuStore((s) => s.tuneMatmul);
  if (status.state !== 'ready') return null;

  return (
    <section className="panel" data-testid="tuning">
      <h2>Kernel tuning</h2>
      <p className="muted">
        The fastest way to multiply matrices differs from GPU to GPU. Tuning measures each strategy
        on yours for typical shapes and remembers the winner in this browser. Without it, sensible
        defaults are used.
      </p>
      {tuning.state === 'running' && (
        <p aria-busy="true">Measuring… (a minute on a software adapter)</p>
      )}
      {tuning.state === 'failed' && (
        <p className="error" role="alert">
          {tuning.message}
        </p>
      )}
      {tuning.state === 'done' && (
        <table className="results">
          <thead>
            <tr>
              <th scope="col">Problem</th>
              <th scope="col">Fastest workgroup</th>
            </tr>
          </thead>
          <tbody>
            {tuning.result.map((t) => (
              <tr key={t.problem}>
                <td>{t.problem}</td>
                <td className="mono">{t.tile}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <button type="button" onClick={() => void tune()} disabled={tuning.state === 'running'}>
        {tuning.state === 'done' ? 'Tune again' : 'Tune for this GPU'}
      </button>
    </section>
  );
}
