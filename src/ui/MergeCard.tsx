import type { ReactNode } from 'react';
import { MERGE_METHODS, METHOD_NAMES, type MergeMethod } from '../worker/api.ts';
import {
  boardSources,
  cancelMergeJob,
  defaultMergeName,
  reads,
  useComposeStore,
  type MergeSettings,
  type RankMode,
} from './compose-store.ts';
import { useLibraryStore } from './library-store.ts';
import { JobProgress } from './JobProgress.tsx';
import { MessageLines } from './MessageLines.tsx';

const FAMILIES = [
  { family: 'exact', label: 'Exact, on the factors' },
  { family: 'dense', label: 'Entrywise on ΔW, then SVD' },
  { family: 'factor', label: 'PEFT factor space (approximate)' },
] as const;

/** What the output rank is when none is asked (the merge's own rule), for the option's label. */
function defaultRank(method: MergeMethod): string {
  if (method === 'svd' || method === 'lora_lego' || MERGE_METHODS[method].family === 'dense')
    return 'largest source rank';
  return 'exact (no truncation)';
}

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
  const show = (parameter: string) => reads(settings.method, parameter);
  const slerpMisfit = settings.method === 'slerp' && sources.length !== 2;
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
          {FAMILIES.map(({ family, label }) => (
            <optgroup key={family} label={label}>
              {METHOD_NAMES.filter((m) => MERGE_METHODS[m].family === family).map((m) => (
                <option key={m} value={m}>
                  {m}
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
        {show('density') && (
          <NumberField
            label="Density"
            title="Share of entries kept, 0 < d ≤ 1"
            value={settings.density}
            min={0.01}
            max={1}
            step={0.05}
            onChange={(density) => {
              setSettings({ density });
            }}
          />
        )}
        {show('majoritySign') && (
          <label title="Sign election: sum of values (total) or count of signs (frequency)">
            Majority sign
            <select
              value={settings.majoritySign}
              onChange={(e) => {
                setSettings({ majoritySign: e.target.value as MergeSettings['majoritySign'] });
              }}
            >
              <option value="total">total</option>
              <option value="frequency">frequency</option>
            </select>
          </label>
        )}
        {show('tiesDivisor') && (
          <label title="What the agreeing entries are divided by">
            TIES divisor
            <select
              value={settings.tiesDivisor}
              onChange={(e) => {
                setSettings({ tiesDivisor: e.target.value as MergeSettings['tiesDivisor'] });
              }}
            >
              <option value="count">count (PEFT)</option>
              <option value="weights">weights (mergekit)</option>
              <option value="none">none</option>
            </select>
          </label>
        )}
        {show('gamma') && (
          <NumberField
            label="Gamma"
            title="Share of the largest entries dropped as outliers"
            value={settings.gamma}
            min={0}
            max={0.99}
            step={0.01}
            onChange={(gamma) => {
              setSettings({ gamma });
            }}
          />
        )}
        {show('epsilon') && (
          <NumberField
            label="Epsilon"
            title="Keep probabilities range over density ± epsilon"
            value={settings.epsilon}
            min={0}
            max={0.5}
            step={0.01}
            onChange={(epsilon) => {
              setSettings({ epsilon });
            }}
          />
        )}
        {show('t') && (
          <NumberField
            label="t"
            title="SLERP position: 0 the first adapter on the board, 1 the second"
            value={settings.t}
            min={0}
            max={1}
            step={0.05}
            onChange={(t) => {
              setSettings({ t });
            }}
          />
        )}
        {show('opcmAlpha') && (
          <NumberField
            label="OPCM alpha"
            title="Share of Σσ whose leading directions later adapters may not change"
            value={settings.opcmAlpha}
            min={0}
            max={0.95}
            step={0.05}
            onChange={(opcmAlpha) => {
              setSettings({ opcmAlpha });
            }}
          />
        )}
        {show('seed') && (
          <NumberField
            label="Seed"
            title="The random draws (DARE, DELLA, LoRA-LEGO): the same seed, the same merge"
            value={settings.seed}
            step={1}
            onChange={(seed) => {
              setSettings({ seed: Math.trunc(seed) });
            }}
          />
        )}
        {show('rank') && <RankFields settings={settings} />}
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
      {slerpMisfit && <p className="note">SLERP merges exactly two adapters: switch on two.</p>}
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
    </div>
  );
}

function RankFields({ settings }: { settings: MergeSettings }) {
  const setSettings = useComposeStore((s) => s.setSettings);
  return (
    <>
      <label
        className="span-2"
        title="Per module: a fixed rank k, or the fewest directions keeping a share of ‖ΔW‖²"
      >
        Output rank
        <select
          value={settings.rankMode}
          data-testid="rank-mode"
          onChange={(e) => {
            setSettings({ rankMode: e.target.value as RankMode });
          }}
        >
          <option value="default">{defaultRank(settings.method)}</option>
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
