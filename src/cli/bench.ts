import type { AddressInfo } from 'node:net';
import { acquireGpu, adapterName } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import type { BrowserBenchRow } from '../linalg/matmul.bench.page.ts';
import { gflops, MATMUL_CASES, timeOurMatmul } from '../linalg/matmul.bench.ts';
import { launchChromium } from '../testing/chromium.ts';

/** `lora-studio bench [--quick] [--node-only]`: matmul GFLOP/s, ours vs TF.js WebGPU. */
export async function bench(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--quick' && a !== '--node-only');
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(' ')}`);
  const reps = args.includes('--quick') ? 3 : 7;

  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const nodeAdapter = adapterName(gpu.adapter);
  const nodeMs: number[] = [];
  try {
    for (const c of MATMUL_CASES) {
      nodeMs.push(await timeOurMatmul(gpu, c, reps));
      process.stderr.write('.');
    }
  } finally {
    gpu.destroy();
  }
  process.stderr.write('\n');

  const browser = args.includes('--node-only') ? undefined : await runInChromium(reps);
  const header = [
    'case',
    'ours, Chromium',
    'TF.js WebGPU, Chromium',
    'ours ÷ TF.js',
    'ours, Node (Dawn)',
  ];
  const rows = MATMUL_CASES.map((c, i) => {
    const b = browser?.rows[i];
    return [
      c.name,
      b ? b.oursGflops.toFixed(2) : '–',
      b ? b.tfjsGflops.toFixed(2) : '–',
      b ? `${(b.oursGflops / b.tfjsGflops).toFixed(1)}×` : '–',
      gflops(c, nodeMs[i]).toFixed(2),
    ];
  });
  console.log(`matmul, GFLOP/s (median of ${reps} runs after warm-up; each run times a batch of`);
  console.log('products submitted together until a readback of the last result)');
  console.log(
    `Node adapter: ${nodeAdapter}${browser ? `; Chromium adapter: ${browser.adapter}` : ''}\n`,
  );
  console.log(markdownTable(header, rows));
  return 0;
}

function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

async function runInChromium(reps: number): Promise<{ adapter: string; rows: BrowserBenchRow[] }> {
  const { createServer } = await import('vite');
  const page = 'src/linalg/matmul.bench.html';
  const server = await createServer({
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0 },
    // Pre-bundle TF.js before the page loads, so Vite never reloads it mid-run.
    optimizeDeps: { entries: [page] },
  });
  await server.listen();
  const browser = await launchChromium();
  try {
    const { port } = server.httpServer!.address() as AddressInfo;
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${port}/${page}?reps=${reps}`);
    const handle = await tab.waitForFunction(() => window.benchResults, undefined, {
      timeout: 0,
      polling: 1000,
    });
    const result = (await handle.jsonValue())!;
    if ('error' in result) throw new Error(`in Chromium: ${result.error}`);
    return result;
  } finally {
    await browser.close();
    await server.close();
  }
}
