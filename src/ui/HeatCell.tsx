import type { CSSProperties, ReactNode } from 'react';

/**
 * A value's colour on a diverging scale: positive values in the theme's heat colour, negative
 * ones in red, stronger the closer |value| is to 1. Strong cells switch to the ink that stays
 * readable on them (styles.css: --heat-strong-ink).
 */
export function heatProps(value: number | null): { className: string; style: CSSProperties } {
  if (value === null || !Number.isFinite(value)) return { className: 'heat', style: {} };
  const share = Math.round(Math.min(1, Math.abs(value)) * 100);
  const hue = value < 0 ? 'var(--heat-negative)' : 'var(--heat-positive)';
  return {
    className: share > 55 ? 'heat heat-strong' : 'heat',
    style: { background: `color-mix(in srgb, ${hue} ${share}%, transparent)` },
  };
}

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
