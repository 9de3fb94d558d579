import { useState } from 'react';
import { formatBytes } from './format.ts';
import { useDropTarget } from './drop-target.ts';
import { useModelStore } from './model-store.ts';

/** The loaded model's card (architecture, size, memory) and ways to load another. */
export function ModelPanel() {
  const model = useModelStore((s) => s.model);
  const loadFiles = useModelStore((s) => s.loadFiles);
  const loadBuiltin = useModelStore((s) => s.loadBuiltin);
  const loadFromHub = useModelStore((s) => s.loadFromHub);
  const download = useModelStore((s) => s.download);
  const dropTarget = useDropTarget((data) => void loadFiles([...data.files]));
  const [repo, setRepo] = useState('');
  if (!model.info && !model.loading && !model.error) return null;
  return (
    <section {...dropTarget} data-testid="model">
      <h2>Model</h2>
      {model.loading && <p aria-busy="true">Loading the model…</p>}
      {download && (
        <label className="download">
          {download.file}
          <progress
            data-testid="download-progress"
            value={download.loaded}
            max={download.total || undefined}
          />
        </label>
      )}
      {model.error && (
        <p className="error" role="alert" data-testid="model-error">
          {model.error}
        </p>
      )}
      {model.info && (
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
          <dt>{model.info.where === 'gpu' ? 'GPU memory' : 'Memory (CPU)'}</dt>
          <dd data-testid="model-memory">
            {formatBytes(model.info.memoryBytes)} (weights {model.info.weightDTypes.join(' + ')}, KV
            cache f32)
          </dd>
        </dl>
      )}
      <div className="model-sources">
        <label className="button-like">
          Open model files…
          <input
            type="file"
            multiple
            hidden
            data-testid="model-files"
            onChange={(e) => {
              void loadFiles([...(e.target.files ?? [])]);
            }}
          />
        </label>
        <button type="button" onClick={() => void loadBuiltin()}>
          Built-in model
        </button>
      </div>
      <form
        className="hub"
        onSubmit={(e) => {
          e.preventDefault();
          void loadFromHub(repo);
        }}
      >
        <input
          value={repo}
          placeholder="Hub id, e.g. HuggingFaceTB/SmolLM2-135M"
          aria-label="Hugging Face Hub model id"
          data-testid="hub-id"
          onChange={(e) => {
            setRepo(e.target.value);
          }}
        />
        <button type="submit" disabled={!repo.trim() || model.loading}>
          Load from the Hub
        </button>
      </form>
      <p className="muted">
        Or drop files here: a Hugging Face folder (config.json, *.safetensors, tokenizer.json) or a
        llama2.c checkpoint with its tokenizer. Nothing leaves this machine.
      </p>
    </section>
  );
}
