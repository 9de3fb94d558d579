#!/usr/bin/env node
// Entry of the `lora-studio` command. Node 20 cannot run TypeScript, so this shim loads
// tsx, and Dawn may need a Vulkan loader that only LD_LIBRARY_PATH at process start can
// provide (see src/gpu/node-env.ts): when it does, the shim runs itself again with it.
import { spawnSync } from 'node:child_process';
import { register } from 'tsx/esm/api';

register();
const { vulkanEnv } = await import('../gpu/node-env.ts');
const { LD_LIBRARY_PATH } = vulkanEnv();

if (LD_LIBRARY_PATH && !process.env.LORA_STUDIO_REEXEC) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, LD_LIBRARY_PATH, LORA_STUDIO_REEXEC: '1' },
  });
  process.exit(child.status ?? 1);
}

const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
