import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasControlCharacters } from './text.js';

export type VideoSource = { kind: 'file'; path: string } | { kind: 'http'; url: URL };

/**
 * Reads a submitted `source`: an absolute local path, a file:// URL or an http(s) URL.
 * Returns a reason when the string is none of those.
 */
export function parseSource(source: string): { ok: true; source: VideoSource } | { ok: false; reason: string } {
  const text = source.trim();
  if (text.length === 0) return { ok: false, reason: 'source is empty' };
  if (hasControlCharacters(text)) return { ok: false, reason: 'source contains control characters' };
  if (/^[a-z][a-z0-9+.-]*:/i.test(text) && !/^[a-z]:[\\/]/i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return { ok: false, reason: 'source is not a valid URL' };
    }
    if (url.protocol === 'file:') {
      let file: string;
      try {
        file = fileURLToPath(url);
      } catch (error) {
        return { ok: false, reason: `source is not a usable file URL: ${(error as Error).message}` };
      }
      // Percent-encoded (`%00`, `%0a`): no file system takes a NUL, and no sane file name has the others.
      if (hasControlCharacters(file)) return { ok: false, reason: 'source file path contains control characters' };
      return { ok: true, source: { kind: 'file', path: file } };
    }
    if (url.protocol === 'http:' || url.protocol === 'https:') {
      if (url.username || url.password) return { ok: false, reason: 'source URL must not carry credentials' };
      return { ok: true, source: { kind: 'http', url } };
    }
    return { ok: false, reason: `source scheme "${url.protocol.slice(0, -1)}" is not supported (use a file path, file:// or http(s)://)` };
  }
  if (!path.isAbsolute(text)) return { ok: false, reason: 'source must be an absolute file path, a file:// URL or an http(s) URL' };
  return { ok: true, source: { kind: 'file', path: path.normalize(text) } };
}

/** Whether a local path lies under one of the allowed roots ('any' allows every path). */
export function isAllowedFilePath(filePath: string, roots: readonly string[] | 'any'): boolean {
  if (roots === 'any') return true;
  const normalized = path.resolve(filePath);
  return roots.some((root) => normalized === root || normalized.startsWith(root.endsWith(path.sep) ? root : root + path.sep));
}

/**
 * Why a local file may not be a source, or undefined when it may: outside the allowed roots
 * (FILE_SOURCE_ROOTS; none named takes no local file), or one of the stored videos' files
 * (`<storage>/videos/`, every tenant's), whatever the roots allow. The API asks it of the path as
 * written, the ingest of where the file and the folders really are (links followed); the reason
 * names the file as it was `named`.
 */
export function localSourceRefusal(file: string, place: { roots: readonly string[] | 'any'; storageRoot: string; named?: string }): string | undefined {
  const named = place.named ?? file;
  if (!isAllowedFilePath(file, place.roots)) {
    return place.roots === 'any' || place.roots.length
      ? `local file ${named} is outside the directories sources may be read from (FILE_SOURCE_ROOTS)`
      : 'local files are not taken as sources here (FILE_SOURCE_ROOTS names no directory): submit an http(s) URL';
  }
  if (isAllowedFilePath(file, [path.join(path.resolve(place.storageRoot), 'videos')])) {
    return `local file ${named} is one of the stored videos' files (the storage folder's videos/): submit the original file`;
  }
  return undefined;
}
