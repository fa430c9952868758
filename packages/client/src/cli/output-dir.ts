import { stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from './usage-error.js';

/**
 * The absolute folder results go to, checked before anything is sent or submitted: a path that
 * names a file is a typo the user should hear about now, not after a long wait. A folder that
 * does not exist yet is created with the first video's results.
 */
export async function resolveOutputDir(value: string, cwd: string, option: string, command: string): Promise<string> {
  if (value.trim() === '') throw new UsageError(`--${option} needs a folder, got an empty value`, command);
  const absolute = path.resolve(cwd, value);
  const info = await stat(absolute).catch(() => undefined);
  if (info && !info.isDirectory()) throw new UsageError(`--${option} ${absolute} is not a folder`, command);
  return absolute;
}
