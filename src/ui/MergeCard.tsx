import type { ReactNode } from 'react';
import { MERGE_METHODS, type MergeMethod } from '../worker/api.ts';
import {
  boardSources,
  cancelMergeJob,
  defaultMergeName,
  useComposeStore,
} from './compose-store.ts';
import { useLibraryStore } from './library-store.ts';
import { JobProgress } from './JobProgress.tsx';
import {
  adapterCountProblem,
  METHOD_GROUPS,
  parameterFields,
  type MergeSettings,
  type ParameterField,
  type RankMode,
} from './merge-settings.ts';
import { MergekitYaml } from './MergekitYaml.tsx';
import { MessageLines } from './MessageLines.tsx';

/** The method, only the parameters it reads, the output rank, and Bake. */
export function MergeCard() {
  const settings = useComposeStore((s) => s.settings);
  const setSettings = useComposeStore((s) => s.setSettings);
  const board = useComposeStore((s) => s.board);
  const bake = useComposeStore((s) => s.bake);
  const bakeMerge = useComposeStore((s) => s.bakeMerge);
  const items = useLibraryStore((s) => s.items);
  const use = useLibraryStore((s) => s.use);
  const sources = boardSources(board, items, use);
  const info = MERGE_METHODS[settings.method];
  const approximate = info.family === 'factor';
  const countProblem = adapterCountProblem(settings.method, sources.length);
  return (
    <div className="compose-card merge-card" data-testid="merge-card">
      <h3>Merge</h3>
      <label className="field">
        Method
        <select
          value={settings.method}
          data-testid="merge-method"
          onChange={(e) => {
            setSettings({ method: e.target.value as MergeMethod });
          }}
        >
          {METHOD_GROUPS.map(({ label, methods }) => (
            <optgroup key={label} label={label}>
              {methods.map((m) => (
                <option key={m.value} value={m.value}>
                  {m.label}
                </option>
              ))}
            </optgroup>
          ))}
        </select>
      </label>
      <p className="method-summary" data-testid="method-summary">
        {approximate && (
          <span
            className="chip chip-warn"
            title="B·A of the combined factors holds products Bᵢ·Aⱼ no adapter had"
          >
            approximate: cross terms
          </span>
        )}
        {info.peft && <span className="chip">PEFT</span>} {info.summary}
      </p>
      <div className="form-grid merge-parameters">
        {parameterFields(settings.method).map((field) => (
          <ParameterInput key={field.name} field={field} settings={settings} />
        ))}
        <ClampFields clamp={settings.clamp} />
        <label className="wide">
          Name of the result
          <input
            value={settings.name}
            placeholder={defaultMergeName(settings.method, sources)}
            data-testid="merge-name"
            onChange={(e) => {
              setSettings({ name: e.target.value });
            }}
          />
        </label>
      </div>
      {countProblem && <p className="note">{countProblem}</p>}
      <div className="controls">
        <button
          type="button"
          disabled={bake.state === 'running' || sources.length === 0}
          onClick={() => void bakeMerge()}
        >
          {bake.state === 'running' ? 'Baking…' : 'Bake'}
        </button>
        <span className="muted">
          {sources.length === 0
            ? 'Switch on the adapters to merge on the board.'
            : `Merges the ${sources.length} adapter${sources.length === 1 ? '' : 's'} switched on, with their weights.`}
        </span>
      </div>
      {bake.state === 'running' && (
        <JobProgress
          job={bake}
          unit="modules"
          label="Merging"
          testId="bake-progress"
          onCancel={cancelMergeJob}
        />
      )}
      {bake.state === 'failed' && <MessageLines text={bake.message} testId="bake-error" />}
      <MergekitYaml />
    </div>
  );
}

/** The input of one parameter, as its description says. */
function ParameterInput({ field, settings }: { field: ParameterField; settings: MergeSettings }) {
  const setSettings = useComposeStore((s) => s.setSettings);
  if (field.kind === 'rank') return <RankFields field={field} settings={settings} />;
  if (field.kind === 'choice')
    return (
      <label title={field.title}>
        {field.label}
        <select
          value={settings[field.name]}
          onChange={(e) => {
            setSettings({ [field.name]: e.target.value });
          }}
        >
          {field.choices.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      </label>
    );
  return (
    <NumberField
      label={field.label}
      title={field.title}
      value={settings[field.name]}
      min={field.min}
      max={field.max}
      step={field.step}
      onChange={(value) => {
        setSettings({ [field.name]: field.integer ? Math.trunc(value) : value });
      }}
    />
  );
}

function RankFields({
  field,
  settings,
}: {
  field: Extract<ParameterField, { kind: 'rank' }>;
  settings: MergeSettings;
}) {
  const setSettings = useComposeStore((s) => s.setSettings);
  return (
    <>
      <label className="span-2" title={field.title}>
        {field.label}
        <select
          value={settings.rankMode}
          data-testid="rank-mode"
          onChange={(e) => {
            setSettings({ rankMode: e.target.value as RankMode });
          }}
        >
          <option value="default">{field.defaultLabel}</option>
          <option value="fixed">fixed k</option>
          <option value="energy">energy %</option>
        </select>
      </label>
      {settings.rankMode === 'fixed' && (
        <NumberField
          label="k"
          value={settings.rank}
          min={1}
          step={1}
          onChange={(rank) => {
            setSettings({ rank: Math.max(1, Math.round(rank)) });
          }}
        />
      )}
      {settings.rankMode === 'energy' && (
        <NumberField
          label="Energy kept %"
          value={settings.energyPercent}
          min={1}
          max={100}
          step={1}
          onChange={(energyPercent) => {
            setSettings({ energyPercent });
          }}
        />
      )}
    </>
  );
}

/** The optional quantile clamp of the output factors (kohya's, PEFT's `clamp`). */
function ClampFields({ clamp }: { clamp: number | null }) {
  const setSettings = useComposeStore((s) => s.setSettings);
  return (
    <>
      <label
        className="check"
        title="Clamp the output factors to a quantile of their absolute values"
      >
        <input
          type="checkbox"
          checked={clamp !== null}
          onChange={(e) => {
            setSettings({ clamp: e.target.checked ? 0.99 : null });
          }}
        />
        Clamp
      </label>
      {clamp !== null && (
        <NumberField
          label="Quantile"
          value={clamp}
          min={0.5}
          max={1}
          step={0.005}
          onChange={(quantile) => {
            setSettings({ clamp: quantile });
          }}
        />
      )}
    </>
  );
}

function NumberField({
  label,
  title,
  value,
  min,
  max,
  step,
  onChange,
}: {
  label: ReactNode;
  title?: string;
  value: number;
  min?: number;
  max?: number;
  step: number;
  onChange: (value: number) => void;
}) {
  return (
    <label title={title}>
      {label}
      <input
        type="number"
        value={value}
        min={min}
        max={max}
        step={step}
        onChange={(e) => {
          // "" and "-" on the way to a number are not one yet: keep the last value.
          if (e.target.value !== '' && Number.isFinite(Number(e.target.value)))
            onChange(Number(e.target.value));
        }}
      />
    </label>
  );
}
