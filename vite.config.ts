import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';
import { vulkanEnv } from './src/gpu/node-env.ts';

// Test workers are forked from this process: give them what Dawn needs to find
// SwiftShader before they start (LD_LIBRARY_PATH only counts at process start).
Object.assign(process.env, vulkanEnv());

/**
 * Where the Hub's LFS batch API sends an upload's bytes (src/hub/push.ts): presigned S3 URLs, PUT
 * without credentials. Evidence: a single-part upload's `href` is in the `lfs.huggingface.co`
 * bucket's regional path (`https://s3.us-east-1.amazonaws.com/lfs.huggingface.co/repos/…`) in a
 * batch answer recorded through huggingface_hub 0.17 (September 2023) and in the git-lfs error of
 * huggingface_hub issue #1311 (January 2023); the parts of a multipart upload go to the bucket's
 * accelerated host (`https://hf-hub-lfs-us-east-1.s3-accelerate.amazonaws.com/…`), which reports
 * of uploads through huggingface_hub in 2025–26 name as where LFS parts go. The multipart
 * completion and LFS verify URLs are on huggingface.co. Only that bucket's path and that host are
 * allowed, not all of S3. (Xet storage, which the studio does not use, is under *.hf.co.)
 */
const HUB_UPLOAD_SOURCES = [
  'https://s3.us-east-1.amazonaws.com/lfs.huggingface.co/',
  'https://hf-hub-lfs-us-east-1.s3-accelerate.amazonaws.com',
];

/**
 * The built app's Content-Security-Policy: code and data from its own origin only; network
 * requests only to the Hugging Face Hub (and its CDNs), the storage its uploads go to, and local
 * servers (a Hub mirror given with ?hub=). Build only: Vite's dev server injects inline scripts
 * for hot reload.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  `connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co ${HUB_UPLOAD_SOURCES.join(' ')} http://127.0.0.1:* http://localhost:*`,
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

function contentSecurityPolicy(): Plugin {
  return {
    name: 'content-security-policy',
    apply: 'build',
    transformIndexHtml: () => [
      {
        tag: 'meta',
        attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY },
        injectTo: 'head-prepend',
      },
    ],
  };
}

export default defineConfig({
  plugins: [react(), contentSecurityPolicy()],
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
