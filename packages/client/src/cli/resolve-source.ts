import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './usage-error.js';

const URL_SCHEMES = new Set(['http:', 'https:', 'file:']);

/**
 * A command-line source as the API wants it: URLs as given, local files as absolute paths. A
 * file that does not exist here is refused before anything is sent, since it is most likely a
 * typo; the workers must see the same path.
 */
export async function resolveSource(argument: string, cwd: string): Promise<string> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(argument)) {
    let url: URL;
    try {
      url = new URL(argument);
    } catch {
      throw new UsageError(`"${argument}" is not a valid URL`, 'submit');
    }
    if (!URL_SCHEMES.has(url.protocol)) throw new UsageError(`"${argument}": only http(s):// and file:// URLs can be submitted`, 'submit');
    // A file URL of this machine is checked as a path is; one naming another host is the API's to judge.
    if (url.protocol === 'file:' && (url.hostname === '' || url.hostname === 'localhost')) await expectFile(fileURLToPath(url));
    return argument;
  }
  const absolute = path.resolve(cwd, argument);
  await expectFile(absolute);
  return absolute;
}

async function expectFile(absolute: string): Promise<void> {
  const info = await stat(absolute).catch(() => undefined);
  if (!info) throw new UsageError(`no such file: ${absolute}`, 'submit');
  if (!info.isFile()) throw new UsageError(`not a file: ${absolute}`, 'submit');
}
