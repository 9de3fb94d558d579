import { acquireGpu, adapterName, type AdapterReport } from '../gpu/device.ts';
import { formatBytes } from '../units.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { UsageError } from './args.ts';

const BYTE_LIMITS = /Size$/;

export function formatReport(report: AdapterReport): string {
  const width = Math.max(...Object.keys(report.limits).map((k) => k.length));
  const { subgroupSize: sg } = report;
  const subgroups = !sg ? 'n/a' : sg.min === sg.max ? `${sg.min}` : `${sg.min}–${sg.max}`;
  return [
    `adapter      ${adapterName(report)}${report.isFallback ? ' [software fallback]' : ''}`,
    `device       ${report.device || 'n/a'}`,
    `enabled      ${report.enabled.join(', ') || 'none'}`,
    `subgroups    ${subgroups}`,
    `features     ${report.features.join(', ')}`,
    'limits',
    ...Object.entries(report.limits).map(
      ([k, v]) => `  ${k.padEnd(width)}  ${BYTE_LIMITS.test(k) ? `${v} (${formatBytes(v)})` : v}`,
    ),
  ].join('\n');
}

/** `lora-studio info [--json]` */
export async function info(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--json');
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown.join(' ')}`);
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  try {
    console.log(
      args.includes('--json') ? JSON.stringify(gpu.adapter, null, 2) : formatReport(gpu.adapter),
    );
    return 0;
  } finally {
    gpu.destroy();
  }
}
