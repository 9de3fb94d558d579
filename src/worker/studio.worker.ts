/// <reference lib="webworker" />
// The Web Worker that owns the GPU; the UI talks to it through comlink (see api.ts).
import { expose } from 'comlink';
import { viteShaders } from '../gpu/shaders-vite.ts';
import { createStudio } from './studio.ts';
import { idbTuningStore } from './tuning-idb.ts';

expose(
  createStudio({
    gpu: (navigator as Navigator & { gpu?: GPU }).gpu,
    shaders: viteShaders,
    secureContext: self.isSecureContext,
    tuningStore: idbTuningStore,
  }),
);
