import type { LibraryItem } from '../worker/api.ts';
import { DEFAULT_USE, useLibraryStore, WEIGHT_MAX, WEIGHT_MIN } from './library-store.ts';

const WEIGHT_STEP = 0.05;

/** "Use" switch and weight (slider and number) of one library adapter in the playground. */
export function AdapterUseControls({ item }: { item: LibraryItem }) {
  const use = useLibraryStore((s) => s.use[item.id] ?? DEFAULT_USE);
  const setUse = useLibraryStore((s) => s.setUse);
  const setWeight = useLibraryStore((s) => s.setWeight);
  return (
    <div className={use.on ? 'adapter-use adapter-use-on' : 'adapter-use'}>
      <label className="check">
        <input
          type="checkbox"
          role="switch"
          checked={use.on}
          aria-label={`Use ${item.name}`}
          data-testid="adapter-use"
          onChange={(e) => {
            setUse(item.id, e.target.checked);
          }}
        />
        Use
      </label>
      <input
        type="range"
        min={WEIGHT_MIN}
        max={WEIGHT_MAX}
        step={WEIGHT_STEP}
        value={use.weight}
        aria-label={`Weight of ${item.name}`}
        aria-valuetext={use.weight.toFixed(2)}
        data-testid="adapter-weight-slider"
        onChange={(e) => {
          setWeight(item.id, Number(e.target.value));
        }}
      />
      <input
        type="number"
        min={WEIGHT_MIN}
        max={WEIGHT_MAX}
        step={WEIGHT_STEP}
        value={use.weight}
        aria-label={`Weight of ${item.name} (number)`}
        data-testid="adapter-weight"
        onChange={(e) => {
          // "-" and "" on the way to "-0.5" are not numbers yet: keep the last one.
          if (e.target.value !== '') setWeight(item.id, Number(e.target.value));
        }}
      />
    </div>
  );
}
