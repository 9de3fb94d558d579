import { useEffect } from 'react';
import { GpuPanel } from './GpuPanel.tsx';
import { ModelPanel } from './ModelPanel.tsx';
import { useModelStore } from './model-store.ts';
import { Playground } from './Playground.tsx';
import { useGpuStore } from './gpu-store.ts';
import { SelfCheckPanel } from './SelfCheckPanel.tsx';
import { TuningPanel } from './TuningPanel.tsx';

export function App() {
  const connect = useGpuStore((s) => s.connect);
  const ready = useGpuStore((s) => s.status.state === 'ready');
  const loadBuiltin = useModelStore((s) => s.loadBuiltin);
  useEffect(connect, [connect]);
  // The built-in model is part of the app: load it as soon as the GPU is there.
  useEffect(() => {
    if (ready) void loadBuiltin();
  }, [ready, loadBuiltin]);
  return (
    <div className="app">
      <header className="app-header">
        <h1>
          LoRA Studio{' '}
          <span className="tagline">
            fine-tune and compose adapters on your GPU, in your browser
          </span>
        </h1>
        <GpuBadge />
      </header>
      <main className="panels">
        <div className="stack">
          <ModelPanel />
          <Playground />
        </div>
        <GpuPanel />
        <div className="stack">
          <SelfCheckPanel />
          <TuningPanel />
        </div>
      </main>
    </div>
  );
}

function GpuBadge() {
  const status = useGpuStore((s) => s.status);
  const text =
    status.state === 'ready'
      ? status.adapter.isFallback
        ? 'GPU ready (software)'
        : 'GPU ready'
      : status.state === 'connecting'
        ? 'Connecting…'
        : status.state === 'lost'
          ? 'GPU lost'
          : 'No WebGPU';
  return (
    <span className={`badge badge-${status.state}`} role="status" data-testid="gpu-badge">
      {text}
    </span>
  );
}
