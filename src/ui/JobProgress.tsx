/** A running worker job's progress bar: "Merging: 12 of 35 modules", with a Cancel button. */
export function JobProgress({
  job,
  label,
  unit,
  testId,
  onCancel,
}: {
  job: { done: number; total: number };
  label: string;
  unit: string;
  testId?: string;
  onCancel?: () => void;
}) {
  const counted = job.total > 0;
  return (
    <div className="job-progress" data-testid={testId}>
      <label>
        <span>
          {label}
          {counted ? `: ${job.done} of ${job.total} ${unit}` : '…'}
        </span>
        {/* Without a total yet the bar is indeterminate. */}
        <progress value={counted ? job.done : undefined} max={counted ? job.total : undefined} />
      </label>
      {onCancel && (
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      )}
    </div>
  );
}
