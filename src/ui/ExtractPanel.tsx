import { useState, type DragEvent } from 'react';
import {
  EMBEDDING_CHOICES,
  HEAD_CHOICES,
  type AdapterEffect,
  type EmbeddingChoice,
  type ExtractedModuleReport,
  type ExtractionOutcome,
  type HeadChoice,
} from '../worker/api.ts';
import { useDataStore } from './data-store.ts';
import { droppedFiles, pickedFiles } from './dropped-files.ts';
import {
  cancelExtraction,
  useExtractStore,
  type CheckpointRole,
  type ExtractForm,
  type MeasureText,
} from './extract-store.ts';
import { formatBytes, shortModuleName } from './format.ts';
import { engineReady, useGpuStore } from './gpu-store.ts';
import { HeatCell } from './HeatCell.tsx';
import { JobProgress } from './JobProgress.tsx';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';
import { useModelStore } from './model-store.ts';
import { MetricButtons } from './MetricButtons.tsx';

/** A webkitdirectory input picks a whole folder (React does not know the attribute). */
const FOLDER_PICKER = { webkitdirectory: '' };

const EMBEDDING_LABELS: Record<EmbeddingChoice, string> = {
  skip: 'skip',
  lora: 'LoRA of ΔE',
  save: 'save whole',
};
const HEAD_LABELS: Record<HeadChoice, string> = { skip: 'skip', save: 'save whole' };

/** A share in percent: "97.3", with "100" kept for what rounds there. */
const percentNumber = (share: number) => String(+(share * 100).toFixed(share >= 0.9995 ? 0 : 1));
const percent = (share: number) => `${percentNumber(share)} %`;

/**
 * A LoRA from two checkpoints of one architecture: a base and its full fine-tune, each an HF
 * folder or a .gguf file. The worker extracts it (truncated SVD of W_tuned − W_base per module),
 * the library gets it; the panel shows the energy each module keeps, what is not carried, and
 * the loaded model's perplexity on the user's text without and with it.
 */
export function ExtractPanel() {
  const ready = useGpuStore((s) => engineReady(s.status));
  const job = useExtractStore((s) => s.job);
  const extract = useExtractStore((s) => s.extract);
  const base = useExtractStore((s) => s.base);
  const tuned = useExtractStore((s) => s.tuned);
  const text = useMeasureText();
  if (!ready) return null;
  const running = job.state === 'running';
  return (
    <section className="panel extract" data-testid="extract">
      <h2>Extract a LoRA</h2>
      <p className="muted hint">
        Drop a base model and a full fine-tune of it (each a Hugging Face folder or a .gguf file):
        the difference of every linear module, W<sub>tuned</sub> − W<sub>base</sub>, becomes a LoRA
        by truncated SVD. The models are read a weight at a time; nothing leaves this machine.
      </p>
      <div className="extract-slots">
        <CheckpointSlot role="base" label="Base" disabled={running} />
        <CheckpointSlot role="tuned" label="Fine-tuned" disabled={running} />
      </div>
      <ExtractFormFields disabled={running} />
      <MeasureTextField />
      <div className="controls">
        <button
          type="button"
          disabled={running || !base || !tuned}
          data-testid="extract-run"
          onClick={() => void extract(text)}
        >
          Extract
        </button>
      </div>
      {job.state === 'running' && (
        <JobProgress
          job={job}
          label="Extracting"
          unit="weights"
          testId="extract-progress"
          onCancel={cancelExtraction}
        />
      )}
      {job.state === 'failed' && <MessageLines text={job.message} testId="extract-error" />}
      {job.state === 'done' && (
        <>
          <ExtractionReport outcome={job.result} />
          <BeforeAfter outcome={job.result} />
        </>
      )}
    </section>
  );
}

/** The text the loaded model is measured on: the panel's own, else the Data panel's file. */
function useMeasureText(): MeasureText | null {
  const ownText = useExtractStore((s) => s.ownText);
  const source = useDataStore((s) => s.source);
  if (ownText.trim()) return { text: ownText, fileName: 'text.txt' };
  return source ? { text: source.content, fileName: source.fileName } : null;
}

/**
 * Where one checkpoint is dropped or picked. The page's own drop handler (page-drop.ts) leaves
 * drops on `data-own-drop` to it, so a dropped folder is not loaded as the model.
 */
function CheckpointSlot({
  role,
  label,
  disabled,
}: {
  role: CheckpointRole;
  label: string;
  disabled: boolean;
}) {
  const checkpoint = useExtractStore((s) => s[role]);
  const choose = useExtractStore((s) => s.choose);
  const [dragging, setDragging] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (disabled) return;
    droppedFiles(e.dataTransfer).then(
      (files) => {
        setError(null);
        choose(role, files);
      },
      (reason: unknown) => {
        setError(`Could not read the drop: ${String(reason)}`);
      },
    );
  };
  const pick = (input: HTMLInputElement) => {
    choose(role, pickedFiles(input.files));
    input.value = '';
  };
  return (
    <div
      className={dragging ? 'extract-slot drop-target' : 'extract-slot'}
      data-own-drop=""
      data-testid={`extract-${role}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => {
        setDragging(false);
      }}
      onDrop={onDrop}
    >
      <h3>{label}</h3>
      {checkpoint ? (
        <p data-testid={`extract-${role}-name`}>
          <strong>{checkpoint.name}</strong>{' '}
          <span className="muted">
            {checkpoint.kind}, {checkpoint.files.length} file
            {checkpoint.files.length === 1 ? '' : 's'}, {formatBytes(checkpoint.bytes)}
          </span>
        </p>
      ) : (
        <p className="muted">Drop a folder or a .gguf here</p>
      )}
      <div className="model-sources">
        <label className="button-like" aria-disabled={disabled}>
          Folder…
          <input
            type="file"
            hidden
            disabled={disabled}
            data-testid={`extract-${role}-folder`}
            {...FOLDER_PICKER}
            onChange={(e) => {
              pick(e.target);
            }}
          />
        </label>
        <label className="button-like" aria-disabled={disabled}>
          Files…
          <input
            type="file"
            multiple
            hidden
            disabled={disabled}
            accept=".gguf,.safetensors,.json,.bin"
            data-testid={`extract-${role}-files`}
            onChange={(e) => {
              pick(e.target);
            }}
          />
        </label>
      </div>
      {error && <p className="error">{error}</p>}
    </div>
  );
}

function ExtractFormFields({ disabled }: { disabled: boolean }) {
  const form = useExtractStore((s) => s.form);
  const setForm = useExtractStore((s) => s.setForm);
  const number = (key: keyof ExtractForm) => (e: { target: HTMLInputElement }) => {
    setForm({ [key]: e.target.valueAsNumber });
  };
  return (
    <fieldset className="form-grid" disabled={disabled}>
      <label>
        Rank by
        <select
          value={form.mode}
          data-testid="extract-mode"
          onChange={(e) => {
            setForm({ mode: e.target.value as ExtractForm['mode'] });
          }}
        >
          <option value="rank">a fixed rank</option>
          <option value="energy">energy kept</option>
        </select>
      </label>
      {form.mode === 'rank' ? (
        <label>
          Rank
          <input
            type="number"
            min={1}
            step={1}
            value={form.rank}
            data-testid="extract-rank"
            onChange={number('rank')}
          />
        </label>
      ) : (
        <>
          <label title="Per module, the smallest rank keeping this share of ‖ΔW‖²">
            Energy %
            <input
              type="number"
              min={1}
              max={100}
              step="any"
              value={form.energyPercent}
              data-testid="extract-energy"
              onChange={number('energyPercent')}
            />
          </label>
          <label>
            Largest rank
            <input
              type="number"
              min={1}
              step={1}
              value={form.maxRank}
              data-testid="extract-max-rank"
              onChange={number('maxRank')}
            />
          </label>
        </>
      )}
      <label>
        Modules
        <select
          value={form.targets}
          onChange={(e) => {
            setForm({ targets: e.target.value as ExtractForm['targets'] });
          }}
        >
          <option value="all-linear">all linear</option>
          <option value="attention">attention</option>
        </select>
      </label>
      <label title="The token embedding is not a linear module: leave its change out, extract it as PEFT's embedding LoRA, or save the tuned table whole (modules_to_save)">
        Embeddings
        <select
          value={form.embeddings}
          onChange={(e) => {
            setForm({ embeddings: e.target.value as EmbeddingChoice });
          }}
        >
          {EMBEDDING_CHOICES.map((c) => (
            <option key={c} value={c}>
              {EMBEDDING_LABELS[c]}
            </option>
          ))}
        </select>
      </label>
      <label title="An output head not tied to the embedding: leave its change out, or save it whole (modules_to_save)">
        Output head
        <select
          value={form.head}
          onChange={(e) => {
            setForm({ head: e.target.value as HeadChoice });
          }}
        >
          {HEAD_CHOICES.map((c) => (
            <option key={c} value={c}>
              {HEAD_LABELS[c]}
            </option>
          ))}
        </select>
      </label>
    </fieldset>
  );
}

/** What a cell of the grid shows, and its colour on HeatCell's 0–1 scale. */
const METRICS = {
  energy: {
    label: 'energy kept %',
    text: (m: ExtractedModuleReport) => percentNumber(m.energy),
    shade: (m: ExtractedModuleReport) => m.energy,
  },
  rank: {
    label: 'rank',
    text: (m: ExtractedModuleReport) => String(m.rank),
    shade: (m: ExtractedModuleReport, all: readonly ExtractedModuleReport[]) =>
      m.rank / Math.max(1, ...all.map((a) => a.rank)),
  },
  change: {
    label: '‖ΔW‖ / ‖W‖ %',
    text: (m: ExtractedModuleReport) => percentNumber(m.relative),
    shade: (m: ExtractedModuleReport, all: readonly ExtractedModuleReport[]) =>
      m.relative / Math.max(Number.MIN_VALUE, ...all.map((a) => a.relative)),
  },
} as const;
type Metric = keyof typeof METRICS;

/** "gate" for gate_proj: the grid then fits the panel (the full name is the column's title). */

/** The energy each module keeps (layer × module), what is saved whole and what is not carried. */
function ExtractionReport({ outcome }: { outcome: ExtractionOutcome }) {
  const [metric, setMetric] = useState<Metric>('energy');
  const { modules, notCarried } = outcome;
  const ranks = modules.map((m) => m.rank);
  const byCell = new Map(modules.map((m) => [`${m.layer}/${m.module}`, m]));
  const rows: (number | null)[] = Array.from({ length: outcome.numLayers }, (_, l) => l);
  if (modules.some((m) => m.layer === null)) rows.push(null);
  const { label, text, shade } = METRICS[metric];
  const shownNotCarried = [...notCarried].sort((a, b) => b.relative - a.relative).slice(0, 12);
  return (
    <div className="extract-report" data-testid="extract-report">
      <p data-testid="extract-summary">
        <strong>{outcome.item.name}</strong> is in the library: {modules.length} module
        {modules.length === 1 ? '' : 's'}
        {modules.length > 0 &&
          `, rank ${Math.min(...ranks) === Math.max(...ranks) ? ranks[0] : `${Math.min(...ranks)}–${Math.max(...ranks)}`}, keeping ${percent(outcome.energy)} of ‖ΔW‖²`}
        {outcome.saved.length > 0 && `; saved whole: ${outcome.saved.join(', ')}`}.
      </p>
      {modules.length > 0 && (
        <>
          <MetricButtons
            metrics={METRICS}
            value={metric}
            onChange={setMetric}
            label="The grid shows"
          />
          <div className="heat-scroll">
            <table className="heat-table" data-testid="extract-energy-grid">
              <caption className="muted">
                {label} per layer and module; hover a cell for all of its numbers
              </caption>
              <thead>
                <tr>
                  <th scope="col">layer</th>
                  {outcome.moduleTypes.map((t) => (
                    <th key={t} scope="col" title={t}>
                      {shortModuleName(t)}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.map((layer) => (
                  <tr key={layer ?? 'other'}>
                    <th scope="row">{layer ?? '—'}</th>
                    {outcome.moduleTypes.map((type) => {
                      const m = byCell.get(`${layer}/${type}`);
                      if (!m) return <HeatCell key={type} value={null} />;
                      return (
                        <HeatCell
                          key={type}
                          value={shade(m, modules)}
                          title={`${m.path}: rank ${m.rank} keeps ${percent(m.energy)} of ‖ΔW‖²; ‖ΔW‖ ${m.norm.toPrecision(3)}, ${percent(m.relative)} of ‖W‖`}
                        >
                          {text(m)}
                        </HeatCell>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {notCarried.length === 0 ? (
        <p className="muted" data-testid="extract-not-carried">
          Every weight the fine-tune changed is carried.
        </p>
      ) : (
        <details className="extract-not-carried" data-testid="extract-not-carried">
          <summary>
            {notCarried.length} changed weight{notCarried.length === 1 ? '' : 's'} not carried
            (norms, biases, skipped tables): applied to the base, the adapter gives the fine-tune
            without them
          </summary>
          <ul>
            {shownNotCarried.map((n) => (
              <li key={n.name}>
                <code>{n.name}</code>{' '}
                <span className="muted">changed by {percent(n.relative)} of its norm</span>
              </li>
            ))}
            {notCarried.length > shownNotCarried.length && (
              <li className="muted">and {notCarried.length - shownNotCarried.length} more</li>
            )}
          </ul>
        </details>
      )}
    </div>
  );
}

/**
 * The loaded model's perplexity on the user's text without and with the extracted adapter: the
 * fine-tune recovered when the model is the base, the fine-tuning transfer when it is another
 * version of it.
 */
function BeforeAfter({ outcome }: { outcome: ExtractionOutcome }) {
  const model = useModelStore((s) => s.model.info);
  const effect = useExtractStore((s) => s.effect);
  const measure = useExtractStore((s) => s.measure);
  const text = useMeasureText();
  const fits = useLibraryFit(outcome.item.id);
  return (
    <div className="extract-effect" data-testid="extract-effect">
      <h3>Before and after</h3>
      {!model ? (
        <p className="muted">
          Load a model to measure it on your text without and with the adapter: the base, or another
          version of it to see the fine-tune carried over.
        </p>
      ) : (
        <>
          <p className="muted hint">
            {model.name === outcome.base
              ? `The loaded model is the base: with the adapter it should come close to ${outcome.tuned}.`
              : `The loaded model, ${model.name}, is not the base the adapter came from: this measures the fine-tune carried to it (fine-tuning transfer).`}
            {fits === false && ' The adapter does not fit its shapes.'}
          </p>
          <div className="controls">
            <button
              type="button"
              disabled={!text || effect.state === 'running'}
              data-testid="extract-measure"
              onClick={() => {
                if (text) void measure(text);
              }}
            >
              Measure
            </button>
          </div>
          {effect.state === 'running' && (
            <p className="busy" aria-busy="true">
              <span className="spinner" aria-hidden="true" /> Measuring…
            </p>
          )}
          {effect.state === 'failed' && (
            <MessageLines text={effect.message} testId="extract-effect-error" />
          )}
          {effect.state === 'done' && <EffectTable effect={effect.result} />}
        </>
      )}
    </div>
  );
}

/** The text the loaded model is measured on after the extraction, without and with the adapter. */
function MeasureTextField() {
  const ownText = useExtractStore((s) => s.ownText);
  const setOwnText = useExtractStore((s) => s.setOwnText);
  const dataFile = useDataStore((s) => s.source?.fileName);
  return (
    <label className="extract-text">
      Text for the before and after
      <textarea
        rows={3}
        value={ownText}
        data-testid="extract-text"
        placeholder={
          dataFile
            ? `Empty: the Data panel's ${dataFile}`
            : 'A few paragraphs in the fine-tune’s style, or a file opened in the Data panel'
        }
        onChange={(e) => {
          setOwnText(e.target.value);
        }}
      />
    </label>
  );
}

/** Whether the library says the item fits the loaded model (undefined while unknown). */
function useLibraryFit(id: string): boolean | undefined {
  return useLibraryStore((s) => s.items.find((i) => i.id === id)?.fits) ?? undefined;
}

function EffectTable({ effect }: { effect: AdapterEffect }) {
  const rows = [
    { name: `${effect.model} alone`, cell: effect.before },
    { name: `with ${effect.adapter}`, cell: effect.after },
  ];
  return (
    <table className="extract-effect-table" data-testid="extract-effect-table">
      <caption className="muted">
        Mean over {effect.tokens.toLocaleString('en-US')} predicted tokens
      </caption>
      <thead>
        <tr>
          <th scope="col">on the text</th>
          <th scope="col">loss</th>
          <th scope="col">perplexity</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ name, cell }) => (
          <tr key={name}>
            <th scope="row">{name}</th>
            <td>{cell.loss.toFixed(3)}</td>
            <td>{cell.perplexity.toFixed(2)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
