import type { CSSProperties, ReactNode } from 'react';

/**
 * A value's colour on a diverging scale: positive values in the theme's heat colour, negative
 * ones in red, stronger the closer |value| is to 1 — up to 60 % of the colour over the panel, the
 * most under which the theme's own text keeps a 4.5:1 contrast in both themes (WCAG AA), so a cell
 * never needs another ink.
 */
export function heatProps(value: number | null): { className: string; style: CSSProperties } {
  if (value === null || !Number.isFinite(value)) return { className: 'heat', style: {} };
  const share = Math.round(Math.min(1, Math.abs(value)) * MAX_SHARE);
  const hue = value < 0 ? 'var(--heat-negative)' : 'var(--heat-positive)';
  return {
    className: 'heat',
    style: { background: `color-mix(in srgb, ${hue} ${share}%, transparent)` },
  };
}

const MAX_SHARE = 60;

/** Two decimals, without the "-0.00" of a tiny negative value. */
export const formatCell = (value: number) => (Math.abs(value) < 0.005 ? 0 : value).toFixed(2);

/** A table cell coloured by its value; `null` draws an empty (missing) cell. */
export function HeatCell({
  value,
  title,
  children,
}: {
  value: number | null;
  title?: string;
  children?: ReactNode;
}) {
  const { className, style } = heatProps(value);
  return (
    <td className={className} style={style} title={title}>
      {children ?? (value === null ? '—' : formatCell(value))}
    </td>
  );
}
