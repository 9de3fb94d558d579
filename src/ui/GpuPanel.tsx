import type { AdapterReport } from '../worker/api.ts';
import { formatBytes } from './format.ts';
import { useGpuStore } from './gpu-store.ts';
import { WebGpuHelp } from './WebGpuHelp.tsx';

const LIMIT_LABELS: Record<keyof AdapterReport['limits'], string> = {
  maxBufferSize: 'Max buffer',
  maxStorageBufferBindingSize: 'Max storage binding',
  maxStorageBuffersPerShaderStage: 'Storage buffers per stage',
  maxUniformBufferBindingSize: 'Max uniform binding',
  maxComputeWorkgroupStorageSize: 'Workgroup storage',
  maxComputeInvocationsPerWorkgroup: 'Invocations per workgroup',
  maxComputeWorkgroupSizeX: 'Workgroup size X',
  maxComputeWorkgroupSizeY: 'Workgroup size Y',
  maxComputeWorkgroupSizeZ: 'Workgroup size Z',
  maxComputeWorkgroupsPerDimension: 'Workgroups per dimension',
};

const BYTE_LIMITS = new Set<string>([
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
]);

function formatLimit(key: string, value: number): string {
  return BYTE_LIMITS.has(key) ? formatBytes(value) : value.toLocaleString('en-US');
}

export function GpuPanel() {
  const status = useGpuStore((s) => s.status);
  const reconnect = useGpuStore((s) => s.reconnect);

  if (status.state === 'connecting') {
    return (
      <section className="panel" aria-busy="true">
        <h2>GPU</h2>
        <p className="muted">Asking the browser for a WebGPU adapter…</p>
      </section>
    );
  }
  if (status.state === 'cpu') return <WebGpuHelp reason={status.reason} detail={status.detail} />;
  if (status.state === 'crashed') {
    return (
      <section className="panel panel-warning" role="alert" data-testid="studio-crashed">
        <h2>The studio could not start</h2>
        <p>
          Its worker failed to load, so nothing can run. Reload the page; if it happens again, the
          browser may block module workers (private modes, strict extensions).
        </p>
        <p className="muted mono">Details: {status.detail}</p>
      </section>
    );
  }
  if (status.state === 'lost') {
    return (
      <section className="panel panel-warning" role="alert">
        <h2>GPU device lost</h2>
        <p>
          The browser took the GPU away ({status.reason}: {status.detail || 'no details'}). This
          happens after a driver reset, a long-running kernel, or when the system runs short of GPU
          memory.
        </p>
        <button type="button" onClick={() => void reconnect()}>
          Reconnect to the GPU
        </button>
      </section>
    );
  }

  const { adapter } = status;
  return (
    <section className="panel" data-testid="gpu-panel">
      <h2>GPU</h2>
      <dl className="facts">
        <dt>Adapter</dt>
        <dd data-testid="adapter-name">
          {[adapter.vendor, adapter.architecture].filter(Boolean).join(' ') || 'unknown'}
          {adapter.isFallback && <span className="chip chip-warn">software</span>}
        </dd>
        <dt>Device</dt>
        <dd>{adapter.device || '—'}</dd>
        <dt>Driver</dt>
        <dd>{adapter.description || '—'}</dd>
        <dt>Subgroup size</dt>
        <dd>
          {adapter.subgroupSize
            ? adapter.subgroupSize.min === adapter.subgroupSize.max
              ? adapter.subgroupSize.min
              : `${adapter.subgroupSize.min}–${adapter.subgroupSize.max}`
            : '—'}
        </dd>
      </dl>
      {adapter.isFallback && (
        <p className="note">
          This is a software adapter: everything works, but slowly. A browser with hardware WebGPU
          is much faster.
        </p>
      )}
      <h3>Features used</h3>
      <ul className="chips" data-testid="features">
        {(['shader-f16', 'subgroups', 'timestamp-query'] as const).map((f) => (
          <li key={f} className={adapter.enabled.includes(f) ? 'chip chip-on' : 'chip chip-off'}>
            {f} {adapter.enabled.includes(f) ? '✓' : '✗'}
          </li>
        ))}
      </ul>
      <h3>Key limits</h3>
      <table className="limits" data-testid="limits">
        <tbody>
          {Object.entries(adapter.limits).map(([key, value]) => (
            <tr key={key}>
              <th scope="row">{LIMIT_LABELS[key as keyof AdapterReport['limits']]}</th>
              <td>{formatLimit(key, value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <details>
        <summary>All {adapter.features.length} adapter features</summary>
        <p className="mono">{adapter.features.join(', ')}</p>
      </details>
    </section>
  );
}
