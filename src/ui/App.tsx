import { useEffect } from 'react';
import { ComposePanel } from './ComposePanel.tsx';
import { DataPanel } from './DataPanel.tsx';
import { ExtractPanel } from './ExtractPanel.tsx';
import { useDataStore } from './data-store.ts';
import { GpuPanel } from './GpuPanel.tsx';
import { LibraryPanel } from './LibraryPanel.tsx';
import { useLibraryStore } from './library-store.ts';
import { ModelPanel } from './ModelPanel.tsx';
import { useModelStore } from './model-store.ts';
import { usePageDrop } from './page-drop.ts';
import { Playground } from './Playground.tsx';
import { engineReady, useGpuStore } from './gpu-store.ts';
import { SelfCheckPanel } from './SelfCheckPanel.tsx';
import { useShareStore } from './share-store.ts';
import { Toast } from './Toast.tsx';
import { TrainPanel } from './TrainPanel.tsx';
import { useTrainingStore } from './training-store.ts';
import { TuningPanel } from './TuningPanel.tsx';

export function App() {
  const connect = useGpuStore((s) => s.connect);
  const ready = useGpuStore((s) => engineReady(s.status));
  const loadBuiltin = useModelStore((s) => s.loadBuiltin);
  useEffect(connect, [connect]);
  // The built-in model is part of the app: load it as soon as the GPU is there.
  useEffect(() => {
    if (ready) void loadBuiltin();
  }, [ready, loadBuiltin]);
  const refreshLibrary = useLibraryStore((s) => s.refresh);
  useEffect(() => {
    if (ready) void refreshLibrary();
  }, [ready, refreshLibrary]);
  // A (new) model: the dataset is tokenized for it again, and a saved run may now match it.
  const modelName = useModelStore((s) => s.model.info?.name);
  const prepareData = useDataStore((s) => s.prepare);
  const checkSaved = useTrainingStore((s) => s.checkSaved);
  useEffect(() => {
    if (!modelName) return;
    void prepareData();
    void checkSaved();
  }, [modelName, prepareData, checkSaved]);
  // Every load starts the model without adapters (the same model again too): apply those in use,
  // once the library is listed (after a reload, the saved composition names its adapters).
  const modelInfo = useModelStore((s) => s.model.info);
  const listed = useLibraryStore((s) => s.listed);
  const reapplyAdapters = useLibraryStore((s) => s.reapply);
  useEffect(() => {
    if (modelInfo && listed) void reapplyAdapters();
  }, [modelInfo, listed, reapplyAdapters]);
  // A composition link opens once the model is there (its adapters are checked against it), and
  // again whenever another link is pasted into the address bar.
  const openShared = useShareStore((s) => s.open);
  const hasModel = modelInfo !== null;
  useEffect(() => {
    if (!ready || !hasModel) return;
    const openFromUrl = () => void openShared(location.hash);
    openFromUrl();
    addEventListener('hashchange', openFromUrl);
    return () => {
      removeEventListener('hashchange', openFromUrl);
    };
  }, [ready, hasModel, openShared]);
  usePageDrop();
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
      <CpuBanner />
      <main className="panels">
        <div className="stack">
          <ModelPanel />
          <DataPanel />
          <LibraryPanel />
          <ExtractPanel />
        </div>
        <div className="stack">
          <TrainPanel />
          <Playground />
        </div>
        <ComposePanel />
        <GpuPanel />
        <div className="stack">
          <SelfCheckPanel />
          <TuningPanel />
        </div>
      </main>
      <Toast />
    </div>
  );
}

/** Without WebGPU: what still works, where it is said how to turn WebGPU on. */
function CpuBanner() {
  const onCpu = useGpuStore((s) => s.status.state === 'cpu');
  if (!onCpu) return null;
  return (
    <p className="note cpu-banner" data-testid="cpu-banner">
      This browser offers no WebGPU, so the studio runs on your CPU: everything but training works,
      slower on larger models. <a href="#webgpu-help">How to turn WebGPU on</a>
    </p>
  );
}

function GpuBadge() {
  const status = useGpuStore((s) => s.status);
  const text = {
    ready:
      status.state === 'ready' && status.adapter.isFallback ? 'GPU ready (software)' : 'GPU ready',
    connecting: 'Connecting…',
    lost: 'GPU lost',
    cpu: 'No WebGPU: on the CPU',
    crashed: 'Studio failed to start',
  }[status.state];
  return (
    <span className={`badge badge-${status.state}`} role="status" data-testid="gpu-badge">
      {text}
    </span>
  );
}
