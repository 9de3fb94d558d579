import type { ReactNode } from 'react';
import {
  DEFAULT_BASIS,
  DEFAULT_DENSITY,
  initEntry,
  modelModules,
  nextFreeSlice,
  PLAIN_VARIANT,
  resolveTargets,
  takesBasis,
  TARGET_PRESETS,
} from '../worker/api.ts';
import { useLibraryStore } from './library-store.ts';
import { useModelStore } from './model-store.ts';
import type { VariantName } from '../worker/api.ts';
import { useDataStore } from './data-store.ts';
import {
  INIT_CHOICES,
  isPreset,
  PRESETS,
  useTrainSettingsStore,
  VARIANT_CHOICES,
  type TrainSettings,
} from './train-settings-store.ts';

/** Presets, the settings most runs change, and every other setting under "Advanced". */
export function TrainSettingsForm({ disabled }: { disabled: boolean }) {
  const config = useTrainSettingsStore((s) => s.config);
  const setTrain = useTrainSettingsStore((s) => s.setTrain);
  const setLora = useTrainSettingsStore((s) => s.setLora);
  const applyPreset = useTrainSettingsStore((s) => s.applyPreset);
  const seqLen = useDataStore((s) => s.options.seqLen);
  const setDataOptions = useDataStore((s) => s.setOptions);
  const active = PRESETS.find((p) => isPreset(config, seqLen, p));
  return (
    <fieldset className="train-settings" disabled={disabled}>
      <legend className="visually-hidden">Training settings</legend>
      <div className="presets" role="group" aria-label="Presets">
        {PRESETS.map((preset) => (
          <button
            key={preset.name}
            type="button"
            aria-pressed={preset === active}
            title={preset.description}
            onClick={() => {
              applyPreset(preset);
              setDataOptions({ seqLen: preset.seqLen });
            }}
          >
            {preset.name}
          </button>
        ))}
      </div>
      <p className="muted" data-testid="preset-description">
        {active ? active.description : 'Custom settings.'}
      </p>
      <div className="form-grid">
        <NumberField
          label="Steps"
          value={config.train.steps}
          min={1}
          onChange={(steps) => {
            setTrain({ steps });
          }}
          testId="steps"
        />
        <NumberField
          label="Learning rate"
          value={config.train.lr}
          min={0}
          step="any"
          onChange={(lr) => {
            setTrain({ lr });
          }}
          testId="lr"
        />
        <NumberField
          label="Rank"
          value={config.lora.rank}
          min={1}
          onChange={(rank) => {
            setLora({ rank });
          }}
          title="The adapter's rank r: its size and capacity"
        />
      </div>
      <details className="advanced">
        <summary>Advanced settings</summary>
        <AdapterFields />
        <OptimisationFields />
      </details>
    </fieldset>
  );
}

function NumberField({
  label,
  value,
  onChange,
  min,
  max,
  step,
  title,
  testId,
}: {
  label: ReactNode;
  value: number;
  onChange: (value: number) => void;
  min?: number;
  max?: number;
  step?: number | 'any';
  title?: string;
  testId?: string;
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
        data-testid={testId}
        onChange={(e) => {
          onChange(Number(e.target.value));
        }}
      />
    </label>
  );
}

/** LoRA-Pro corrects each step's factor gradients toward the full fine-tuning step. */
function LoraProField() {
  const loraPro = useTrainSettingsStore((s) => s.config.train.loraPro);
  const setTrain = useTrainSettingsStore((s) => s.setTrain);
  return (
    <label
      className="check"
      title="LoRA-Pro: each step, replace the factor gradients by those whose low-rank update best matches the full gradient"
    >
      <input
        type="checkbox"
        checked={loraPro}
        onChange={(e) => {
          setTrain({ loraPro: e.target.checked });
        }}
      />
      LoRA-Pro
    </label>
  );
}

/** S²FT's density: the share of each layer's heads and channels whose weights train. */
function DensityField() {
  const density = useTrainSettingsStore((s) => s.config.lora.density ?? DEFAULT_DENSITY);
  const setLora = useTrainSettingsStore((s) => s.setLora);
  return (
    <NumberField
      label="Density"
      value={density}
      min={0.01}
      max={1}
      step={0.05}
      testId="density"
      title="The share of each layer's attention heads and MLP channels whose weights train (the adapter's rank follows from it, not from Rank)"
      onChange={(value) => {
        setLora({ density: value });
      }}
    />
  );
}

/** SORSA's regulariser weight γ: how hard B and A are kept orthonormal. */
function OrthonormalWeightField() {
  const gamma = useTrainSettingsStore((s) => s.config.train.orthonormalWeight);
  const setTrain = useTrainSettingsStore((s) => s.setTrain);
  return (
    <NumberField
      label="Orthonormal regulariser γ"
      value={gamma}
      min={0}
      step="any"
      testId="sorsa-gamma"
      title="SORSA adds γ·(‖BᵀB − I‖² + ‖A·Aᵀ − I‖²) to the loss; 0 turns it off"
      onChange={(orthonormalWeight) => {
        setTrain({ orthonormalWeight });
      }}
    />
  );
}

/**
 * Orthogonal adaptation's shared basis: its seed and this adapter's slice, or the first slice no
 * adapter of this model in the library took yet.
 */
function BasisFields() {
  const lora = useTrainSettingsStore((s) => s.config.lora);
  const setLora = useTrainSettingsStore((s) => s.setLora);
  const items = useLibraryStore((s) => s.items);
  const model = useModelStore((s) => s.model.info?.name);
  const basis = lora.basis ?? DEFAULT_BASIS;
  const taken = items.flatMap((item) =>
    item.basis && item.details && item.baseModel === model
      ? [{ basis: item.basis, rank: item.details.rank }]
      : [],
  );
  const free = nextFreeSlice(taken, basis.seed, lora.rank);
  return (
    <>
      <NumberField
        label="Basis seed"
        value={basis.seed}
        min={0}
        step={1}
        testId="basis-seed"
        title="Adapters meant to be merged share this seed: each takes its own slice of the same orthonormal basis"
        onChange={(seed) => {
          setLora({ basis: { ...basis, seed } });
        }}
      />
      <NumberField
        label="Slice"
        value={basis.slice}
        min={0}
        step={1}
        testId="basis-slice"
        title="Which rank-sized slice of the basis this adapter's A is; adapters on different slices sum with little interference"
        onChange={(slice) => {
          setLora({ basis: { ...basis, slice } });
        }}
      />
      <button
        type="button"
        data-testid="next-free-slice"
        disabled={free === basis.slice}
        title={`${taken.length} adapter(s) of this model in the library were trained on bases; slice ${free} overlaps none of seed ${basis.seed}'s`}
        onClick={() => {
          setLora({ basis: { ...basis, slice: free } });
        }}
      >
        Next free slice ({free})
      </button>
    </>
  );
}

/** DyLoRA: nested ranks, so the Library can cut the adapter to any rank after training. */
function DyLoraField() {
  const dylora = useTrainSettingsStore((s) => s.config.lora.dylora === true);
  const setLora = useTrainSettingsStore((s) => s.setLora);
  return (
    <label
      className="check"
      title="DyLoRA: each step trains a random rank prefix, so the finished adapter can be cut to any smaller rank in the Library (size against quality)"
    >
      <input
        type="checkbox"
        checked={dylora}
        data-testid="dylora"
        onChange={(e) => {
          setLora({ dylora: e.target.checked || undefined });
        }}
      />
      DyLoRA (choose the rank later)
    </label>
  );
}

/** Init, scaling, dropout and the modules the adapter is attached to. */
function AdapterFields() {
  const lora = useTrainSettingsStore((s) => s.config.lora);
  const setLora = useTrainSettingsStore((s) => s.setLora);
  const init = INIT_CHOICES.find((c) => c.value === lora.init);
  const variant = VARIANT_CHOICES.find((c) => c.value === (lora.variant ?? PLAIN_VARIANT));
  // The loaded model's modules; the presets are keywords each family resolves.
  const config = useModelStore((s) => s.model.info?.config);
  const modules = modelModules(config);
  const chosen = config ? resolveTargets(config.arch, lora.targets) : lora.targets;
  return (
    <>
      <h3>Adapter</h3>
      <div className="form-grid">
        <label className="wide">
          Initialisation
          <select
            value={lora.init}
            data-testid="init"
            onChange={(e) => {
              setLora({ init: e.target.value as typeof lora.init });
            }}
          >
            {INIT_CHOICES.map((c) => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
          <span className="hint">{init?.explanation}</span>
        </label>
        {takesBasis(lora.init) && <BasisFields />}
        {initEntry(lora.init).orthonormal && <OrthonormalWeightField />}
        {lora.init === 's2ft' && <DensityField />}
        <NumberField
          label="Alpha"
          value={lora.alpha}
          min={0}
          step="any"
          title="Scaling: the update is multiplied by alpha / rank (alpha / √rank with rsLoRA)"
          onChange={(alpha) => {
            setLora({ alpha });
          }}
        />
        <NumberField
          label="Dropout"
          value={lora.dropout}
          min={0}
          max={0.9}
          step={0.05}
          title="Dropout on each adapter's input during training"
          onChange={(dropout) => {
            setLora({ dropout });
          }}
        />
        <label className="check" title="Scale by alpha / √rank: steadier when the rank is large">
          <input
            type="checkbox"
            checked={lora.rslora}
            onChange={(e) => {
              setLora({ rslora: e.target.checked });
            }}
          />
          rsLoRA
        </label>
        <label className="wide">
          Variant
          <select
            value={variant?.value}
            data-testid="variant"
            onChange={(e) => {
              setLora({ variant: e.target.value as VariantName });
            }}
          >
            {VARIANT_CHOICES.map((c) => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
          <span className="hint">{variant?.explanation}</span>
        </label>
        <LoraProField />
        <DyLoraField />
      </div>
      <fieldset className="targets">
        <legend>Target modules</legend>
        {modules.map((module) => (
          <label key={module} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(module)}
              onChange={(e) => {
                setLora({
                  targets: modules.filter((m) =>
                    m === module ? e.target.checked : chosen.includes(m),
                  ),
                });
              }}
            />
            <code>{module}</code>
          </label>
        ))}
        <span className="target-presets">
          {(Object.keys(TARGET_PRESETS) as (keyof typeof TARGET_PRESETS)[]).map((name) => (
            <button
              key={name}
              type="button"
              onClick={() => {
                setLora({ targets: TARGET_PRESETS[name] });
              }}
            >
              {name}
            </button>
          ))}
        </span>
      </fieldset>
    </>
  );
}

const SCHEDULES: { value: TrainSettings['schedule']; label: string }[] = [
  { value: 'cosine', label: 'cosine' },
  { value: 'wsd', label: 'warmup–stable–decay' },
  { value: 'constant', label: 'constant' },
];

/** Batching, the learning-rate schedule, regularisation, evaluation and checkpoints. */
function OptimisationFields() {
  const train = useTrainSettingsStore((s) => s.config.train);
  const setTrain = useTrainSettingsStore((s) => s.setTrain);
  const number = (key: keyof TrainSettings) => (value: number) => {
    setTrain({ [key]: value });
  };
  return (
    <>
      <h3>Optimisation</h3>
      <div className="form-grid">
        <NumberField
          label="Batch size"
          value={train.batchSize}
          min={1}
          onChange={number('batchSize')}
          title="Sequences per micro-batch"
        />
        <NumberField
          label="Grad accumulation"
          value={train.gradAccum}
          min={1}
          onChange={number('gradAccum')}
          title="Micro-batches per optimiser step: a larger batch in the same memory"
        />
        <label>
          Schedule
          <select
            value={train.schedule}
            onChange={(e) => {
              setTrain({ schedule: e.target.value as TrainSettings['schedule'] });
            }}
          >
            {SCHEDULES.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        <NumberField
          label="Warmup steps"
          value={train.warmupSteps}
          min={0}
          onChange={number('warmupSteps')}
        />
        <NumberField
          label="Weight decay"
          value={train.weightDecay}
          min={0}
          step="any"
          onChange={number('weightDecay')}
        />
        <NumberField
          label="Adam β₁"
          value={train.adamBeta1}
          min={0}
          max={1}
          step="any"
          onChange={number('adamBeta1')}
          title="AdamW's decay of the gradients' running mean (adam_beta1)"
        />
        <NumberField
          label="Adam β₂"
          value={train.adamBeta2}
          min={0}
          max={1}
          step="any"
          onChange={number('adamBeta2')}
          title="AdamW's decay of the squared gradients' running mean (adam_beta2)"
        />
        <NumberField
          label="Adam ε"
          value={train.adamEpsilon}
          min={0}
          step="any"
          onChange={number('adamEpsilon')}
          title="Added to AdamW's denominator, for stability (adam_epsilon)"
        />
        <NumberField
          label="Clip norm"
          value={train.maxGradNorm}
          min={0}
          step="any"
          onChange={number('maxGradNorm')}
          title="Clip the gradients' global norm to this; 0 turns clipping off"
        />
        <NumberField
          label="Eval every"
          value={train.evalEvery}
          min={0}
          onChange={number('evalEvery')}
          title="Steps between validation losses and samples; 0: only at the start and the end"
          testId="eval-every"
        />
        <NumberField
          label="Checkpoint every"
          value={train.checkpointEvery}
          min={0}
          onChange={number('checkpointEvery')}
          title="Steps between checkpoints a reload can resume from; 0: only at the end"
          testId="checkpoint-every"
        />
        <NumberField label="Seed" value={train.seed} onChange={number('seed')} />
        <NumberField
          label="Sample tokens"
          value={train.sampleTokens}
          min={1}
          onChange={number('sampleTokens')}
        />
        <label className="check" title="Less memory, about a third more work per step">
          <input
            type="checkbox"
            checked={train.recompute}
            onChange={(e) => {
              setTrain({ recompute: e.target.checked });
            }}
          />
          Recompute activations
        </label>
        <label className="wide">
          Sample prompts, one per line
          <textarea
            rows={2}
            value={train.samplePrompts.join('\n')}
            data-testid="sample-prompts"
            onChange={(e) => {
              setTrain({ samplePrompts: e.target.value.split('\n') });
            }}
          />
        </label>
      </div>
    </>
  );
}
