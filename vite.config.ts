import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';
import { vulkanEnv } from './src/gpu/node-env.ts';

// Test workers are forked from this process: give them what Dawn needs to find
// SwiftShader before they start (LD_LIBRARY_PATH only counts at process start).
Object.assign(process.env, vulkanEnv());

export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  build: { target: 'es2022' },
  test: {
    pool: 'forks',
    reporters: ['default', './src/testing/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['e2e/**/*.e2e.ts'],
          environment: 'node',
          globalSetup: ['e2e/serve.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
