import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';

/**
 * Environment Dawn needs to find a Vulkan device in Node.
 *
 * On machines without a GPU driver (CI, these dev boxes) we use SwiftShader, the
 * software Vulkan driver that Debian's chromium ships with its own Vulkan loader.
 * Dawn rejects Mesa's lavapipe, so any machine whose only ICDs are lavapipe also
 * gets SwiftShader. A machine with a hardware ICD is left alone, as is any
 * explicit VK_ICD_FILENAMES / VK_DRIVER_FILES. LORA_STUDIO_GPU=swiftshader forces it.
 *
 * Returns only the variables to change. LD_LIBRARY_PATH takes effect only in a
 * process started with it, so callers apply this before spawning Node (the CLI
 * shim re-executes itself; vitest's config sets it before forking test workers).
 */
export function vulkanEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const changes: Record<string, string> = {};
  if (!env.XDG_RUNTIME_DIR) changes.XDG_RUNTIME_DIR = tmpdir();
  if (process.platform !== 'linux') return changes;

  const chromium = SWIFTSHADER_DIRS.find((d) => existsSync(`${d}/vk_swiftshader_icd.json`));
  if (!chromium) return changes;

  const forced = env.LORA_STUDIO_GPU === 'swiftshader';
  const explicit = Boolean(env.VK_ICD_FILENAMES ?? env.VK_DRIVER_FILES);
  if (forced || (!explicit && !hasHardwareIcd())) {
    changes.VK_ICD_FILENAMES = `${chromium}/vk_swiftshader_icd.json`;
  }
  // Whatever the driver, Dawn needs a Vulkan loader; chromium ships one beside SwiftShader.
  const current = env.LD_LIBRARY_PATH ?? '';
  if (
    !hasSystemVulkanLoader() &&
    existsSync(`${chromium}/libvulkan.so.1`) &&
    !current.split(':').includes(chromium)
  ) {
    changes.LD_LIBRARY_PATH = current ? `${chromium}:${current}` : chromium;
  }
  return changes;
}

/** Where chromium packages put SwiftShader's ICD (Debian, Ubuntu, Fedora, Arch). */
const SWIFTSHADER_DIRS = [
  '/usr/lib/chromium',
  '/usr/lib/chromium-browser',
  '/usr/lib64/chromium-browser',
];

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

function hasHardwareIcd(): boolean {
  return ICD_DIRS.some(
    (dir) =>
      existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.json') && !f.startsWith('lvp_')),
  );
}

const LOADER_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/lib/x86_64-linux-gnu',
  '/lib/aarch64-linux-gnu',
];

function hasSystemVulkanLoader(): boolean {
  return LOADER_DIRS.some((d) => existsSync(`${d}/libvulkan.so.1`));
}
