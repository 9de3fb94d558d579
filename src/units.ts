// Quantities for people, shared by the engine's messages, the CLI and the UI.

/** Bytes for people: "512 B", "32 KiB", "1.5 MiB", "1.25 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${+value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
