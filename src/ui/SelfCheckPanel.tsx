import { useGpuStore } from './gpu-store.ts';

/** Runs each kernel family on the GPU and compares it with the CPU reference. */
export function SelfCheckPanel() {
  const status = useGpuStore((s) => s.status);
  const check = useGpuStore((s) => s.selfCheck);
  const run = useGpuStore((s) => s.runSelfCheck);
  const kept = useGpuStore((s) => s.selfCheckKept);
  if (status.state !== 'ready') return null;

  return (
    <section className="panel" data-testid="self-check">
      <h2>Kernel self-check</h2>
      <p className="muted">
        Each kernel family runs on the GPU on a fixed problem and is compared with its CPU
        reference: once per GPU and driver, remembered in this browser.
      </p>
      {check.state === 'running' && <p aria-busy="true">Running…</p>}
      {check.state === 'done' && kept && (
        <p className="muted" data-testid="self-check-kept">
          Checked on an earlier visit with this GPU and driver; run it again to check now.
        </p>
      )}
      {check.state === 'failed' && (
        <p className="error" role="alert">
          {check.message}
        </p>
      )}
      {check.state === 'done' && (
        <table className="results">
          <thead>
            <tr>
              <th scope="col">Kernel</th>
              <th scope="col">Problem</th>
              <th scope="col">Result</th>
              <th scope="col">Error</th>
              <th scope="col">Time</th>
            </tr>
          </thead>
          <tbody>
            {check.result.map((r) => (
              <tr key={r.kernel}>
                <td>{r.kernel}</td>
                <td className="muted">{r.problem}</td>
                <td className={r.ok ? 'ok' : 'bad'}>{r.ok ? 'pass' : 'FAIL'}</td>
                <td className="mono" title={r.measure}>
                  {r.error.toExponential(1)} (≤ {r.tolerance.toExponential(0)})
                </td>
                <td className="mono">{r.ms.toFixed(1)} ms</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <button type="button" onClick={() => void run()} disabled={check.state === 'running'}>
        Run again
      </button>
    </section>
  );
}
