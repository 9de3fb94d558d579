/**
 * What went wrong, in words: an Error's message, or whatever else was thrown as a string.
 * Kept outside the engine folders so that the UI (which may not import engine code) shares it.
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
