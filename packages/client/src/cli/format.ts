/** `9.4s`, `3m 05s`, `1h 02m`: short enough for a table column. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** What a user recognises a source by: a file's name, or a URL as given. */
export function sourceLabel(source: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('file:')) return source;
  const name = source.split(/[\\/]/).filter(Boolean).at(-1);
  return name ?? source;
}

/** Cuts `text` to `width` characters, marking the cut with an ellipsis. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * Text from the server (titles, sources, reasons, errors) as it may reach a terminal: line
 * breaks and tabs become spaces, and control characters (escape sequences that could move the
 * cursor, recolour or retitle the terminal) and bidirectional overrides (which reorder what is
 * shown) become U+FFFD, so one field stays one line and shows what it holds.
 */
export function printable(text: string): string {
  return text.replace(/[\t\n\r\v\f]/g, ' ').replace(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu, '\ufffd');
}
