import type { DatasetSummary } from '../worker/api.ts';
import { useDataStore } from './data-store.ts';
import { useModelStore } from './model-store.ts';
import { useTrainingStore } from './training-store.ts';
import { useDropTarget } from './drop-target.ts';
import { formatDuration } from './format.ts';

const FORMAT_NAMES: Record<DatasetSummary['format'], string> = {
  text: 'plain text (documents separated by blank lines)',
  'jsonl-text': 'JSONL, "text" records',
  'jsonl-completion': 'JSONL, "prompt" → "completion" (only the completion is trained)',
  'jsonl-chat': 'JSONL, chat "messages" (only the assistant replies are trained)',
};

/** Tokenizing a file: documents done of all, and the time left at the pace so far. */
function PreparingProgress({ fileName }: { fileName: string }) {
  const progress = useDataStore((s) => s.progress);
  const counted = progress !== null && progress.total > 0;
  const left = progress?.secondsLeft ?? null;
  return (
    <label className="job-progress" aria-busy="true" data-testid="data-progress">
      <span>
        Tokenizing {fileName}
        {counted
          ? `: ${progress.done.toLocaleString('en-US')} of ${progress.total.toLocaleString('en-US')} documents${left !== null ? `, about ${formatDuration(left)} left` : ''}`
          : '…'}
      </span>
      <progress
        value={counted ? progress.done : undefined}
        max={counted ? progress.total : undefined}
      />
    </label>
  );
}

/** The training data: a dropped or picked file, how it is cut, and what the model will see. */
export function DataPanel() {
  const model = useModelStore((s) => s.model.info);
  const source = useDataStore((s) => s.source);
  const summary = useDataStore((s) => s.summary);
  const preparing = useDataStore((s) => s.preparing);
  const error = useDataStore((s) => s.error);
  const loadFile = useDataStore((s) => s.loadFile);
  const loadExample = useDataStore((s) => s.loadExample);
  const training = useTrainingStore((s) => s.run.state === 'running');
  const pick = (files: FileList | null | undefined) => {
    const file = files?.[0];
    if (file && !training) void loadFile(file);
  };
  const dropTarget = useDropTarget((data) => {
    pick(data.files);
  });
  // Datasets are for training, which the CPU does not do.
  if (!model || model.where === 'cpu') return null;
  return (
    <section {...dropTarget} data-testid="data">
      <h2>Data</h2>
      <div className="model-sources">
        <label className="button-like" aria-disabled={training}>
          Open a dataset…
          <input
            type="file"
            accept=".txt,.jsonl,.json,text/plain,application/json"
            hidden
            disabled={training}
            data-testid="data-file"
            onChange={(e) => {
              pick(e.target.files);
              e.target.value = '';
            }}
          />
        </label>
        <button type="button" disabled={training} onClick={() => void loadExample()}>
          Use example dataset
        </button>
      </div>
      <p className="muted">
        Or drop a file here: plain text (.txt), JSONL with <code>text</code>, <code>prompt</code> +{' '}
        <code>completion</code> or chat <code>messages</code> per line, or a JSON array of those.
      </p>
      <DataOptionsForm maxSeqLen={model.config.maxPositions} disabled={training} />
      {preparing && <PreparingProgress fileName={source?.fileName ?? ''} />}
      {error && (
        <p className="error" role="alert" data-testid="data-error">
          {error}
        </p>
      )}
      {summary && !preparing && source && (
        <DataSummary fileName={source.fileName} summary={summary} />
      )}
    </section>
  );
}

/** Sequence length, validation share and split seed; changing one prepares the data again. */
function DataOptionsForm({ maxSeqLen, disabled }: { maxSeqLen: number; disabled: boolean }) {
  const options = useDataStore((s) => s.options);
  const setOptions = useDataStore((s) => s.setOptions);
  return (
    <fieldset className="form-grid" disabled={disabled}>
      <legend className="visually-hidden">How the data is cut</legend>
      <label title={`Tokens per training sequence, at most the model's context (${maxSeqLen})`}>
        Sequence length
        <input
          type="number"
          min={8}
          max={maxSeqLen}
          value={options.seqLen}
          data-testid="seq-len"
          onChange={(e) => {
            setOptions({ seqLen: Math.min(Number(e.target.value), maxSeqLen) });
          }}
        />
      </label>
      <label title="The share of examples held out to measure the validation loss">
        Validation fraction
        <input
          type="number"
          min={0}
          max={0.5}
          step={0.05}
          value={options.validationFraction}
          onChange={(e) => {
            setOptions({ validationFraction: Number(e.target.value) });
          }}
        />
      </label>
      <label title="Which examples go to validation">
        Split seed
        <input
          type="number"
          value={options.seed}
          onChange={(e) => {
            setOptions({ seed: Number(e.target.value) });
          }}
        />
      </label>
    </fieldset>
  );
}

function DataSummary({ fileName, summary }: { fileName: string; summary: DatasetSummary }) {
  const count = (n: number) => n.toLocaleString('en-US');
  return (
    <>
      <dl className="facts dataset-facts" data-testid="data-summary">
        <dt>File</dt>
        <dd>{fileName}</dd>
        <dt>Format</dt>
        <dd>{FORMAT_NAMES[summary.format]}</dd>
        <dt>Examples</dt>
        <dd>{count(summary.examples)}</dd>
        <dt>Tokens</dt>
        <dd>
          {count(summary.tokens)} ({count(summary.trainedTokens)} trained)
        </dd>
        <dt>Sequences</dt>
        <dd>
          {count(summary.trainSequences)} for training, {count(summary.validationSequences)} for
          validation
        </dd>
      </dl>
      {summary.validationSequences === 0 && (
        <p className="note">
          No validation data: the chart will show only the training loss. Raise the validation
          fraction to measure how well the adapter generalises.
        </p>
      )}
      <h3>Preview</h3>
      <ol className="preview" data-testid="data-preview">
        {summary.preview.map((p, i) => (
          <li key={i}>
            <span className="chip">{count(p.tokens)} tokens</span>
            <p>{p.text}</p>
          </li>
        ))}
      </ol>
    </>
  );
}
