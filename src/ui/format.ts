export { formatBytes } from '../units.ts';

/** A duration for people: "42 s", "3 min 05 s", "1 h 02 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A learning rate as people write it: "0.01", "2e-4". */
export function formatRate(lr: number): string {
  return lr >= 1e-3 ? String(+lr.toPrecision(3)) : lr.toExponential(1).replace(/\.0e/, 'e');
}

/** A composition weight with a true minus sign: "−0.50". */
export const formatWeight = (w: number) => `${w < 0 ? '−' : ''}${Math.abs(w).toFixed(2)}`;

/** A module type as a grid's column heading: `q_proj` → `q`, `attn.c_proj` → `attn.c`. */
export const shortModuleName = (type: string): string => type.replace(/_proj$/, '');
