import { fileURLToPath } from 'node:url';

/** The built-in model the app ships (public/models), for commands that need no --model. */
export const BUILT_IN_MODEL = fileURLToPath(
  new URL('../../public/models/stories260K.bin', import.meta.url),
);
