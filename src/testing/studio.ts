// The Studio API in Node for tests: Dawn, the shader files, an in-memory library, run store and
// tuning store, and the built-in stories260K as the built-in model. Overrides replace any part.
import { memoryLibrary } from '../adapters/library.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { memoryRunStore } from '../train/run-store.ts';
import type { StudioApi } from '../worker/api.ts';
import { createStudio, type StudioEnvironment } from '../worker/studio.ts';
import { builtIn } from './fixtures.ts';

export function nodeStudioEnvironment(
  overrides: Partial<StudioEnvironment> = {},
): StudioEnvironment {
  return {
    gpu: nodeGpuEntry(),
    shaders: nodeShaders,
    secureContext: true,
    tuningStore: { load: () => Promise.resolve(undefined), save: () => Promise.resolve() },
    runStore: memoryRunStore(),
    library: memoryLibrary(),
    builtinModel: () =>
      Promise.resolve({
        checkpoint: builtIn('stories260K.bin'),
        tokenizer: builtIn('tok512.bin'),
      }),
    ...overrides,
  };
}

/** A studio over that environment. */
export const nodeStudio = (overrides: Partial<StudioEnvironment> = {}): StudioApi =>
  createStudio(nodeStudioEnvironment(overrides));
