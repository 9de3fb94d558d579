/** What a heat grid shows, chosen by a row of toggle buttons (one pressed). */
export function MetricButtons<M extends string>({
  metrics,
  value,
  onChange,
  label,
}: {
  metrics: Record<M, { label: string }>;
  value: M;
  onChange: (metric: M) => void;
  label: string;
}) {
  return (
    <div className="presets" role="group" aria-label={label}>
      {(Object.keys(metrics) as M[]).map((m) => (
        <button
          key={m}
          type="button"
          aria-pressed={m === value}
          onClick={() => {
            onChange(m);
          }}
        >
          {metrics[m].label}
        </button>
      ))}
    </div>
  );
}
