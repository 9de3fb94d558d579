import { useState } from 'react';
import { errorMessage } from '../errors.ts';
import { TARGET_NAMES, TARGETS, type TargetName } from '../worker/api.ts';
import { saveFile } from './download.ts';
import { studioApi } from './gpu-store.ts';
import { useTrainingStore } from './training-store.ts';

/**
 * "Export run for…": the latest run with a checkpoint (finished, stopped, or saved before a
 * reload) as TRL/PEFT, Axolotl or LLaMA-Factory train it, downloaded as `<run>-<target>.zip` (what
 * `lora-studio export-run` writes). Before the download it lists what the engine cannot express
 * of the run; a run on a local file takes the base's Hub id from a field (else a placeholder).
 */
export function RunExport({ running }: { running: boolean }) {
  const handoff = useTrainingStore((s) => s.handoff);
  const unavailable = useTrainingStore((s) => s.handoffError);
  const [target, setTarget] = useState<TargetName>('trl');
  const [modelId, setModelId] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ready = handoff !== null && !running && !busy;
  const lost = handoff?.lost[target] ?? [];

  const exportRun = async () => {
    const studio = studioApi();
    if (!studio || !ready) return;
    setBusy(true);
    setError(null);
    try {
      const typed = handoff.modelId === null ? modelId.trim() : '';
      const zip = await studio.exportRun(target, typed || undefined);
      saveFile(zip.name, zip.bytes, 'application/zip');
    } catch (e) {
      setError(errorMessage(e).split('\n')[0]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="run-export" role="group" aria-label="Export run" data-testid="run-export">
      <div className="controls">
        <label>
          Export run for{' '}
          <select
            value={target}
            disabled={!ready}
            data-testid="run-export-target"
            onChange={(e) => {
              setTarget(e.target.value as TargetName);
            }}
          >
            {TARGET_NAMES.map((name) => (
              <option key={name} value={name}>
                {TARGETS[name].label}
              </option>
            ))}
          </select>
        </label>
        {handoff?.modelId === null && (
          <label title="The Hub repo of the base model the run trained (a local file here): the exported configs load it. Blank: a placeholder to fill in.">
            Base on the Hub{' '}
            <input
              value={modelId}
              placeholder="owner/name (optional)"
              spellCheck={false}
              autoComplete="off"
              disabled={!ready}
              data-testid="run-export-model"
              onChange={(e) => {
                setModelId(e.target.value);
              }}
            />
          </label>
        )}
        <button type="button" disabled={!ready} onClick={() => void exportRun()}>
          {busy ? 'Exporting…' : 'Download .zip'}
        </button>
      </div>
      {handoff ? (
        <>
          <p className="muted">
            {handoff.name} at step {handoff.step} of {handoff.totalSteps}: its data,{' '}
            {TARGETS[target].config} and README.md
            {handoff.modelId ? `, for ${handoff.modelId}` : ''}.
            {lost.length === 0 && ` ${TARGETS[target].label} can express all of its settings.`}
          </p>
          {lost.length > 0 && (
            <>
              <p className="note">{TARGETS[target].label} cannot express:</p>
              <ul className="run-export-lost" data-testid="run-export-lost">
                {lost.map((l) => (
                  <li key={l.setting}>
                    <strong>{l.setting}</strong>: {l.why}
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      ) : (
        !unavailable && (
          <p className="muted">
            {running
              ? 'The run can be exported once it ends.'
              : 'A finished or stopped run (or one saved before a reload) can be exported.'}
          </p>
        )
      )}
      {(error ?? unavailable) && (
        <p className="error" role="alert" data-testid="run-export-error">
          {error ?? unavailable}
        </p>
      )}
    </div>
  );
}
