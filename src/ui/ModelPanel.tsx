import { useModelStore } from './model-store.ts';

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 20
    ? `${(bytes / 2 ** 20).toFixed(1)} MiB`
    : `${(bytes / 1024).toFixed(0)} KiB`;
}

/** The loaded model's card: architecture, size and memory. */
export function ModelPanel() {
  const model = useModelStore((s) => s.model);
  if (model.state === 'none') return null;
  return (
    <section className="panel" data-testid="model">
      <h2>Model</h2>
      {model.state === 'loading' && <p aria-busy="true">Loading the built-in model…</p>}
      {model.state === 'failed' && (
        <p className="error" role="alert">
          {model.message}
        </p>
      )}
      {model.state === 'ready' && (
        <dl className="facts" data-testid="model-card">
          <dt>Name</dt>
          <dd>{model.info.name}</dd>
          <dt>Architecture</dt>
          <dd>
            {model.info.config.numLayers} layers, hidden {model.info.config.hiddenSize},{' '}
            {model.info.config.numHeads} heads ({model.info.config.numKvHeads} KV), head dim{' '}
            {model.info.config.headDim}
          </dd>
          <dt>Vocabulary</dt>
          <dd>{model.info.config.vocabSize.toLocaleString('en-US')} tokens</dd>
          <dt>Context</dt>
          <dd>{model.info.config.maxPositions.toLocaleString('en-US')} positions</dd>
          <dt>Parameters</dt>
          <dd>{model.info.parameters.toLocaleString('en-US')}</dd>
          <dt>GPU memory</dt>
          <dd>{formatBytes(model.info.gpuBytes)} (weights and KV cache, f32)</dd>
        </dl>
      )}
    </section>
  );
}
