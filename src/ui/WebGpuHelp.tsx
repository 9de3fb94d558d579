import type { UnavailableReason } from '../worker/api.ts';

const TITLES: Record<UnavailableReason, string> = {
  'no-webgpu': 'This browser has no WebGPU',
  'insecure-context': 'WebGPU needs a secure page',
  'no-adapter': 'WebGPU is present but offered no GPU',
  'device-failed': 'The GPU could not be started',
};

/**
 * What to do when WebGPU is missing, one screen per cause with concrete steps, and what the
 * studio does meanwhile: it runs on the CPU.
 */
export function WebGpuHelp({ reason, detail }: { reason: UnavailableReason; detail: string }) {
  return (
    <section
      className="panel panel-warning"
      role="alert"
      id="webgpu-help"
      data-testid="webgpu-help"
    >
      <h2>{TITLES[reason]}</h2>
      <p data-testid="cpu-mode">
        <strong>Meanwhile the studio runs on your CPU:</strong> models load and generate, and
        adapters import, inspect, compare, merge and download, exactly as on a GPU but slower on
        larger models. Training needs WebGPU.
      </p>
      {reason === 'insecure-context' ? (
        <p>
          Browsers only expose WebGPU on <code>https://</code> pages and on{' '}
          <code>http://localhost</code> / <code>http://127.0.0.1</code>. Open the studio through one
          of those.
        </p>
      ) : (
        <>
          <p>LoRA Studio runs every computation on your GPU through WebGPU. To enable it:</p>
          <ul>
            <li>
              <strong>Chrome or Edge 113+</strong> on Windows, macOS and ChromeOS: on by default.
              Update the browser and check <code>chrome://gpu</code> for “WebGPU: Hardware
              accelerated”.
            </li>
            <li>
              <strong>Chrome on Linux</strong>: start it with{' '}
              <code>--enable-unsafe-webgpu --enable-features=Vulkan</code> (or enable{' '}
              <code>chrome://flags/#enable-unsafe-webgpu</code>). Without a GPU driver, add{' '}
              <code>--use-webgpu-adapter=swiftshader</code> for a slow software adapter.
            </li>
            <li>
              <strong>Firefox 141+</strong> on Windows: on by default; elsewhere set{' '}
              <code>dom.webgpu.enabled</code> in <code>about:config</code>.
            </li>
            <li>
              <strong>Safari 26</strong> on macOS, iOS and iPadOS: on by default.
            </li>
          </ul>
          {reason === 'no-adapter' && (
            <p>
              The browser supports WebGPU but found no usable GPU: the GPU may be blocklisted (see{' '}
              <code>chrome://gpu</code>) or hardware acceleration may be turned off in the browser
              settings.
            </p>
          )}
        </>
      )}
      <p className="muted mono">Details: {detail}</p>
    </section>
  );
}
