import { libraryFromRecord, type ShaderLibrary } from './shaders.ts';

const files = import.meta.glob<string>('../../shaders/*.wgsl', {
  query: '?raw',
  import: 'default',
  eager: true,
});

/** Every `shaders/*.wgsl` bundled as text by Vite, keyed by file name without extension. */
export const viteShaders: ShaderLibrary = libraryFromRecord(
  Object.fromEntries(
    Object.entries(files).map(([path, source]) => [
      path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length),
      source,
    ]),
  ),
);
