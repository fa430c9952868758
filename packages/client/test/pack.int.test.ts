/**
 * @clipline/client as a user installs it: `npm pack`, then `npm install --offline` of the tarball
 * in an empty folder outside the repository. Offline works because the package has no
 * dependencies; a dependency added later makes the install fail here, which is the point. The
 * installed CLI then talks to the real producer, and a TypeScript program type-checks against the
 * installed declarations alone.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { DEV_API_KEY } from '@clipline/shared';
import { cliRunner, CLI } from './cli-runner.js';
import { producerUnderTest, type ProducerUnderTest } from './producer-fixture.js';

jest.setTimeout(90_000);

const run = promisify(execFile);
const PACKAGE_DIR = path.resolve(import.meta.dirname ?? '.', '..');
const REPO_MODULES = path.resolve(PACKAGE_DIR, '../../node_modules');
const TSC = path.join(REPO_MODULES, 'typescript/bin/tsc');
/** What the server side needs and a client must not pull in. */
const SERVER_PACKAGES = ['@clipline/shared', 'pg', 'mysql2', 'better-sqlite3', 'bullmq', 'ioredis', 'kysely', 'zod', 'express'];

/** npm as a user runs it: none of the npm_* variables of a surrounding `npm test` or workspace. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
}

let fixture: ProducerUnderTest;
let work: string;
let installed: string;
let tarballFiles: string[];

/** Runs the installed `clipline` (node_modules/.bin, as npx does) in the install folder. */
const installedClipline = cliRunner(() => ({
  cwd: installed,
  env: { CLIPLINE_URL: fixture.running.url, CLIPLINE_API_KEY: DEV_API_KEY },
}));

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with "npx tsc -b"`);
  work = await mkdtemp(path.join(os.tmpdir(), 'clipline-pack-'));
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: PACKAGE_DIR, env: npmEnv() });
  const [manifest] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  tarballFiles = manifest!.files.map((file) => file.path);

  installed = path.join(work, 'client-only');
  await run('mkdir', [installed]);
  await writeFile(path.join(installed, 'package.json'), JSON.stringify({ name: 'client-only', version: '1.0.0', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', path.join(work, manifest!.filename)], {
    cwd: installed,
    env: npmEnv(),
  });
  fixture = await producerUnderTest();
});

afterAll(async () => {
  await fixture?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

it('packs the CLI entry, the compiled code with its declarations, and nothing of the build or tests', () => {
  expect(tarballFiles).toEqual(expect.arrayContaining(['package.json', 'bin/clipline.js', 'dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'src/index.ts']));
  expect(tarballFiles.filter((file) => !/^(package\.json|README\.md|bin\/clipline\.js|dist\/.+\.(js|d\.ts)(\.map)?|src\/.+\.ts)$/.test(file))).toEqual([]);
});

it('installs alone: no dependency, and no import of anything but its own files and node:', async () => {
  expect(await readdir(path.join(installed, 'node_modules'))).toEqual(expect.arrayContaining(['@clipline', '.bin']));
  expect((await readdir(path.join(installed, 'node_modules'))).filter((name) => !name.startsWith('.'))).toEqual(['@clipline']);
  expect(await readdir(path.join(installed, 'node_modules', '@clipline'))).toEqual(['client']);
  for (const name of SERVER_PACKAGES) expect(existsSync(path.join(installed, 'node_modules', name))).toBe(false);

  const root = path.join(installed, 'node_modules', '@clipline', 'client');
  const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  expect(manifest.dependencies).toBeUndefined();
  expect(manifest.peerDependencies).toBeUndefined();
  // Every module specifier in the shipped code and declarations is relative or a Node built-in.
  const outside: string[] = [];
  for (const file of (await readdir(path.join(root, 'dist'), { recursive: true })).filter((name) => /\.(js|d\.ts)$/.test(name))) {
    const text = await readFile(path.join(root, 'dist', file), 'utf8');
    for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      if (!specifier!.startsWith('.') && !specifier!.startsWith('node:')) outside.push(`${file}: ${specifier}`);
    }
  }
  expect(outside).toEqual([]);
});

it('runs the installed clipline: help, then a submit and its status against the producer', async () => {
  const help = await installedClipline(['--help']);
  expect(help).toMatchObject({ code: 0, stderr: '' });
  expect(help.stdout).toMatch(/^Usage: clipline <command> \[options\]\n/);

  const submitted = await installedClipline(['submit', 'https://cdn.example.com/packed.mp4', '--title', 'From the tarball']);
  expect(submitted).toMatchObject({ code: 0, stderr: '' });
  const [id, source] = submitted.stdout.trim().split('  ');
  expect(source).toBe('https://cdn.example.com/packed.mp4');

  const status = await installedClipline(['status', id!]);
  expect(status).toMatchObject({ code: 0, stderr: '' });
  expect(status.stdout).toMatch(new RegExp(`^id +${id}\nstatus +queued 0%\ntitle +From the tarball\n`));
  expect(await fixture.api.getVideo(id!)).toMatchObject({ title: 'From the tarball', source: 'https://cdn.example.com/packed.mp4' });
  await fixture.api.cancelVideo(id!);
});

it('imports as a library, and type-checks against its own declarations', async () => {
  await writeFile(
    path.join(installed, 'consumer.mjs'),
    [
      "import { createClient, ClipLineApiError } from '@clipline/client';",
      'const client = createClient({ baseUrl: process.argv[2], apiKey: process.argv[3] });',
      'const page = await client.listVideos({ limit: 1 });',
      // The dev key is not an operator's: the admin API is not there for it.
      'const admin = await client.listApiKeys().catch((error) => (error instanceof ClipLineApiError ? error.status : String(error)));',
      'console.log(JSON.stringify({ items: Array.isArray(page.items), admin }));',
    ].join('\n'),
  );
  const ran = await run(process.execPath, [path.join(installed, 'consumer.mjs'), fixture.running.url, DEV_API_KEY], { cwd: installed });
  expect(JSON.parse(ran.stdout)).toEqual({ items: true, admin: 404 });

  await writeFile(
    path.join(installed, 'consumer.ts'),
    [
      "import { createClient, type ApiKey, type CreatedApiKey, type Video } from '@clipline/client';",
      "const client = createClient({ baseUrl: 'http://127.0.0.1:3000', apiKey: 'key' });",
      'export const videos: Promise<Video[]> = client.listVideos().then((page) => page.items);',
      "export const created: Promise<CreatedApiKey> = client.createApiKey({ name: 'ops', tenant: 'acme', admin: true });",
      'export const keys: Promise<ApiKey[]> = client.listApiKeys();',
      "export const outcome: Promise<'revoked' | 'already-revoked'> = client.revokeApiKey('cl_x').then((answer) => answer.outcome);",
    ].join('\n'),
  );
  // @clipline/client resolves from the install folder only; Node's own types, which any Node
  // program in TypeScript has, come from the repository's @types/node without installing them.
  await writeFile(
    path.join(installed, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        typeRoots: [path.join(REPO_MODULES, '@types')],
        types: ['node'],
      },
      files: ['consumer.ts'],
    }),
  );
  const checked = await run(process.execPath, [TSC, '-p', installed]).catch((error: { stdout?: string; stderr?: string }) => error);
  expect(checked).toMatchObject({ stdout: '', stderr: '' });
});
