/**
 * The environment variables README.md documents: every table whose first column is headed
 * `variable`, read the way a person reads it. A row may name several variables
 * (`PORT` / `HOST`), abbreviate siblings by their suffix (`PROVIDER_BREAKER_VOLUME_THRESHOLD` /
 * `_ERROR_PERCENT`: same prefix, the suffix in place of as many trailing words) and describe a
 * family in its other columns (`*_BASE_URL` beside `OPENAI_API_KEY`, `YOUTUBE_API_KEY`…: one per
 * provider the row names).
 */

const FULL_NAME = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;

/** Cells of a Markdown table row, `\|` kept inside its cell. */
function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

function backticked(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!.trim());
}

function rowVariables(row: string[]): string[] {
  const [first = '', ...others] = row;
  const named = backticked(first);
  const full = named.filter((token) => FULL_NAME.test(token));
  const variables = [...full];
  for (const token of named.filter((candidate) => /^_[A-Z0-9_]+$/.test(candidate))) {
    const base = full[0];
    if (!base) throw new Error(`README: ${token} follows no full variable name`);
    const words = base.split('_');
    const suffixWords = token.slice(1).split('_').length;
    variables.push(`${words.slice(0, words.length - suffixWords).join('_')}${token}`);
  }
  for (const token of others.flatMap(backticked)) {
    if (/^\*_[A-Z0-9_]+$/.test(token)) {
      for (const name of full) variables.push(`${name.split('_')[0]}${token.slice(1)}`);
    } else if (FULL_NAME.test(token) && token.includes('_')) {
      variables.push(token);
    }
  }
  return variables;
}

export function readmeVariables(markdown: string): string[] {
  const variables = new Set<string>();
  const lines = markdown.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const header = lines[index]!;
    if (!header.startsWith('|') || cells(header)[0]?.toLowerCase() !== 'variable') continue;
    // Skip the header and the |---| line; the table lasts while lines start with a pipe.
    for (index += 2; index < lines.length && lines[index]!.startsWith('|'); index++) {
      for (const name of rowVariables(cells(lines[index]!))) variables.add(name);
    }
  }
  return [...variables];
}
