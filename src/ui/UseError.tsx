// Why an adapter was switched off, under its use controls; when only its numbers were refused
// (NaN, Inf, a scaling beyond float32), the user may apply it anyway.
import { UNAPPLIABLE } from '../worker/api.ts';
import { useLibraryStore } from './library-store.ts';
import { MessageLines } from './MessageLines.tsx';

export function UseError({ id, testId }: { id: string; testId?: string }) {
  const error = useLibraryStore((s) => s.useErrors[id]);
  const applyAnyway = useLibraryStore((s) => s.applyAnyway);
  if (!error) return null;
  return (
    <>
      <MessageLines text={error} testId={testId} />
      {error.includes(UNAPPLIABLE) && (
        <button type="button" onClick={() => void applyAnyway(id)}>
          Apply anyway
        </button>
      )}
    </>
  );
}
