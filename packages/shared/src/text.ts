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
