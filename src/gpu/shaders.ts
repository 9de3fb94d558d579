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

const hashes = new WeakMap<ShaderLibrary, Map<string, string>>();

/**
 * A short hash of a shader's source (FNV-1a), memoised per library: parameters tuned for a
 * kernel are keyed by it, so editing the kernel retires them.
 */
export function shaderHash(library: ShaderLibrary, name: string): string {
  let known = hashes.get(library);
  if (!known) {
    known = new Map<string, string>();
    hashes.set(library, known);
  }
  let hash = known.get(name);
  if (hash === undefined) {
    let h = 0x811c9dc5;
    for (const ch of library(name)) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    hash = h.toString(16).padStart(8, '0');
    known.set(name, hash);
  }
  return hash;
}
