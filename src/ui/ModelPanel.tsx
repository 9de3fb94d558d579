import { useState } from 'react';
import { WEIGHT_PRECISIONS, type ModelConfig, type WeightPrecision } from '../worker/api.ts';
import { formatBytes } from './format.ts';
import { useDropTarget } from './drop-target.ts';
import { HUB_PRESETS, presetSize } from './hub-presets.ts';
import { MemoryTable } from './MemoryTable.tsx';
import { useModelStore } from './model-store.ts';

/** The family, and how its model_type is named when it differs ("llama (mistral)"). */
function familyName(config: ModelConfig): string {
  const { family } = config.arch;
  return config.modelType === family ? family : `${family} (${config.modelType})`;
}

/**
 * What sets the model's architecture apart from a plain Llama, in a few words each: the details
 * that decide what it costs to run and what adapters attach to.
 */
function architectureNotes(config: ModelConfig): string[] {
  const { arch } = config;
  const count = arch.layers.length;
  const notes: string[] = [];
  // A window as long as the context the engine runs (Phi-3's 262,144) never slides.
  const windows = new Set(
    arch.layers.flatMap((l) =>
      l.window === null || l.window >= config.maxPositions ? [] : [l.window],
    ),
  );
  for (const w of windows) {
    const n = arch.layers.filter((l) => l.window === w).length;
    notes.push(`sliding window ${w.toLocaleString('en-US')} on ${n} of ${count} layers`);
  }
  if (arch.positions) notes.push('learned positions');
  const unrotated = arch.ropes.length > 0 ? arch.layers.filter((l) => l.rope === null).length : 0;
  if (unrotated > 0) notes.push(`no RoPE on ${unrotated} of ${count} layers`);
  if (arch.ropes.length > 0 && arch.rotaryDims < config.headDim)
    notes.push(`RoPE on ${arch.rotaryDims} of ${config.headDim} dims per head`);
  const scaling = config.source?.rope_scaling as { rope_type?: unknown; type?: unknown } | null;
  const scalingType = scaling?.rope_type ?? scaling?.type;
  if (typeof scalingType === 'string' && scalingType !== 'default')
    notes.push(
      scalingType === 'longrope' ? 'longrope (short factors)' : `${scalingType} RoPE scaling`,
    );
  const fused = arch.modules.filter((m) => m.role === 'qkv' || m.role === 'gate_up');
  if (fused.length > 0) notes.push(`fused ${fused.map((m) => m.name).join(', ')}`);
  if (arch.qkNorm) notes.push('q/k norms');
  notes.push(arch.gatedMlp ? (arch.activation === 'silu' ? 'SwiGLU' : 'GeGLU') : 'GELU MLP');
  if (arch.norm.kind === 'layer') notes.push('LayerNorm');
  if (arch.finalSoftcap !== null) notes.push(`logits soft-capped at ${arch.finalSoftcap}`);
  return notes;
}

/** The context the model declares, when the engine runs less of it (its cap, or Phi-3's short RoPE). */
function declaredContext(config: ModelConfig): number | null {
  const declared = config.source?.max_position_embeddings ?? config.source?.n_positions;
  return typeof declared === 'number' && declared > config.maxPositions ? declared : null;
}

/** The loaded model's card (architecture, size, memory) and ways to load another. */
export function ModelPanel() {
  const model = useModelStore((s) => s.model);
  const loadFiles = useModelStore((s) => s.loadFiles);
  const loadBuiltin = useModelStore((s) => s.loadBuiltin);
  const loadFromHub = useModelStore((s) => s.loadFromHub);
  const download = useModelStore((s) => s.download);
  const precision = useModelStore((s) => s.precision);
  const setPrecision = useModelStore((s) => s.setPrecision);
  const reload = useModelStore((s) => s.reload);
  const dropTarget = useDropTarget((data) => void loadFiles([...data.files]));
  const [repo, setRepo] = useState('');
  if (!model.info && !model.loading && !model.error) return null;
  const declared = model.info ? declaredContext(model.info.config) : null;
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
          <dt>Family</dt>
          <dd data-testid="model-family">
            {familyName(model.info.config)}: {architectureNotes(model.info.config).join(', ')}
          </dd>
          <dt>Architecture</dt>
          <dd>
            {model.info.config.numLayers} layers, hidden {model.info.config.hiddenSize},{' '}
            {model.info.config.numHeads} heads ({model.info.config.numKvHeads} KV), head dim{' '}
            {model.info.config.headDim}
          </dd>
          <dt>Vocabulary</dt>
          <dd>{model.info.config.vocabSize.toLocaleString('en-US')} tokens</dd>
          <dt>Context</dt>
          <dd>
            {model.info.config.maxPositions.toLocaleString('en-US')} positions
            {declared !== null && ` (of the model's ${declared.toLocaleString('en-US')})`}
          </dd>
          <dt>Parameters</dt>
          <dd>{model.info.parameters.toLocaleString('en-US')}</dd>
          <dt>{model.info.where === 'gpu' ? 'GPU memory' : 'Memory (CPU)'}</dt>
          <dd data-testid="model-memory">
            {formatBytes(model.info.memoryBytes)} (weights {model.info.weightDTypes.join(' + ')}, KV
            cache f32)
          </dd>
        </dl>
      )}
      {model.plan && (
        <MemoryTable
          plan={model.plan}
          current={model.info?.name === model.plan.name ? model.info.plan.precision : null}
          busy={model.loading}
          onChoose={(p) => void reload(p)}
        />
      )}
      <div className="model-sources">
        <label>
          Weights on the GPU{' '}
          <select
            value={precision}
            data-testid="weight-precision"
            title="How the next model's weight matrices are kept: as the file stores them, widened to f32, rounded to f16/bf16, or quantized as they are uploaded (q8_0, q4_k: llama.cpp's formats; nf4: QLoRA's). Norms and biases stay f32."
            onChange={(e) => {
              setPrecision(e.target.value as WeightPrecision);
            }}
          >
            {WEIGHT_PRECISIONS.map((p) => (
              <option key={p} value={p}>
                {p === 'file' ? 'as stored' : p}
              </option>
            ))}
          </select>
        </label>
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
          placeholder="Hub id, e.g. HuggingFaceTB/SmolLM2-135M or owner/name-GGUF:Q4_K_M"
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
      <ul className="hub-presets" aria-label="Hub presets" data-testid="hub-presets">
        {HUB_PRESETS.map((preset) => (
          <li key={preset.repo}>
            <button
              type="button"
              disabled={model.loading}
              onClick={() => {
                setRepo(preset.repo);
                void loadFromHub(preset.repo);
              }}
            >
              {preset.repo}
            </button>
            <span className="muted">
              {preset.family} · {preset.parameters} parameters · {presetSize(preset)} ·{' '}
              {preset.licence}
            </span>
            {preset.gated && (
              <a
                className="gated"
                href={`https://huggingface.co/${preset.repo}`}
                target="_blank"
                rel="noreferrer"
                title="The Hub serves its files only to a logged-in account that accepted its licence; the studio does not log in. Download them there and drop them here."
              >
                gated
              </a>
            )}
          </li>
        ))}
      </ul>
      <p className="muted">
        Or drop files here: a Hugging Face folder (config.json, *.safetensors, tokenizer.json) or a
        llama2.c checkpoint with its tokenizer. Nothing leaves this machine.
      </p>
    </section>
  );
}
