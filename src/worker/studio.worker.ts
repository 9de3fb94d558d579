/// <reference lib="webworker" />
// The Web Worker that owns the GPU; the UI talks to it through comlink (see api.ts).
import { expose } from 'comlink';
import { viteShaders } from '../gpu/shaders-vite.ts';
import { createStudio } from './studio.ts';
import { cacheStorageFiles } from './file-cache.ts';
import { idbLibrary } from './library-idb.ts';
import { idbRunStore } from './run-store-idb.ts';
import { idbTuningStore } from './tuning-idb.ts';

expose(
  createStudio({
    gpu: (navigator as Navigator & { gpu?: GPU }).gpu,
    shaders: viteShaders,
    secureContext: self.isSecureContext,
    tuningStore: idbTuningStore,
    runStore: idbRunStore,
    library: idbLibrary,
    fileCache: cacheStorageFiles,
    builtinModel: async () => {
      const fetchBytes = async (file: string) => {
        const response = await fetch(
          new URL(`${import.meta.env.BASE_URL}models/${file}`, self.location.origin),
        );
        if (!response.ok)
          throw new Error(
            `Could not load the built-in model file ${file}: HTTP ${response.status}`,
          );
        return new Uint8Array(await response.arrayBuffer());
      };
      return {
        checkpoint: await fetchBytes('stories260K.bin'),
        tokenizer: await fetchBytes('tok512.bin'),
      };
    },
  }),
);
