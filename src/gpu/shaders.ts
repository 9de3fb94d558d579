/**
 * WGSL sources, looked up by file name in `shaders/` (without `.wgsl`).
 * The browser build fills this with Vite's `?raw` imports (`shaders-vite.ts`),
 * Node reads the same files from disk (`shaders-node.ts`): one source of truth.
 */
export type ShaderLibrary = (name: string) => string;

export function libraryFromRecord(
  sources: Readonly<Partial<Record<string, string>>>,
): ShaderLibrary {
  return (name) => {
    const source = sources[name];
    if (source === undefined) {
      const known = Object.keys(sources).sort().join(', ');
      throw new Error(`No shader named "${name}" in shaders/ (have: ${known})`);
    }
    return source;
  };
}
