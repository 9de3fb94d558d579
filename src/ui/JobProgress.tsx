/** A running worker job's progress bar: "Merging: 12 of 35 modules". */
export function JobProgress({
  job,
  label,
  unit,
  testId,
}: {
  job: { done: number; total: number };
  label: string;
  unit: string;
  testId?: string;
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
    </div>
  );
}
