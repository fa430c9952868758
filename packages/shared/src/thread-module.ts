import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The compiled JavaScript file of a module that runs inside a worker thread, named relative to
 * the calling module (`threadModulePath(import.meta.url, './pool-tasks.js')`). Threads load
 * plain JavaScript, so when the caller itself runs from TypeScript sources (tests) the built
 * file under dist/ is used; a missing build is an error that names the fix.
 */
export function threadModulePath(callerUrl: string, relative: string): string {
  const beside = fileURLToPath(new URL(relative, callerUrl));
  if (existsSync(beside)) return beside;
  const built = beside.replace(`${'/src/'}`, '/dist/');
  if (existsSync(built)) return built;
  throw new Error(`thread module not built: ${built} is missing (run "npm run build")`);
}
