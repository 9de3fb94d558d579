import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ShaderLibrary } from './shaders.ts';

const shaderDir = fileURLToPath(new URL('../../shaders/', import.meta.url));

/** Reads `shaders/<name>.wgsl` from disk: the same files Vite bundles for the browser. */
export const nodeShaders: ShaderLibrary = (name) => {
  if (!/^[\w-]+$/.test(name)) throw new Error(`Invalid shader name "${name}"`);
  try {
    return readFileSync(`${shaderDir}${name}.wgsl`, 'utf8');
  } catch (cause) {
    throw new Error(`No shader named "${name}" in ${shaderDir}`, { cause });
  }
};
