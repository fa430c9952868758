/**
 * Control characters (C0 and DEL) in text that is stored and shown: a name, a title, a URL.
 * PostgreSQL refuses a NUL in any text it stores, where SQLite and MySQL keep it, so such text
 * is refused where it enters, the same on every engine, with the field named.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is looked for
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

export function hasControlCharacters(text: string): boolean {
  return CONTROL_CHARACTERS.test(text);
}

/**
 * Text written by jobs (an upstream's transcript, a model's caption, an error body quoted in a
 * reason) as every engine stores it: a NUL, which PostgreSQL refuses, becomes U+FFFD, visibly.
 */
export function storableText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\ufffd') : text;
}

/** `JSON.stringify(value)` with every NUL in its strings and keys stored as U+FFFD (see {@link storableText}). */
export function storableJson(value: unknown): string {
  const json = JSON.stringify(value);
  // A `\u0000` escape, not the text `\\u0000` of an escaped backslash followed by "u0000".
  return json.includes('\\u0000') ? json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd') : json;
}
