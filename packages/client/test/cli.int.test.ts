/**
 * The built `clipline` CLI as a user runs it: a child process against the real producer (in this
 * process) and the real worker processes. `keys` goes through the producer's admin API with an
 * operator key from ADMIN_API_KEYS; what it did is read back from the producer's database.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jest } from '@jest/globals';
import { ApiKeysRepository, DEV_API_KEY } from '@clipline/shared';
import { createClient, type ClipLineClient } from '../src/index.js';
import { generateVideo } from '../../../tests/helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type RunningApp } from '../../../tests/helpers/processes.js';
import type { TestEnvironment } from '../../../tests/helpers/services.js';
import { CLI, cliRunner } from './cli-runner.js';
import { producerUnderTest, type ProducerUnderTest, type RunningProducer } from './producer-fixture.js';

jest.setTimeout(60_000);

let fixture: ProducerUnderTest;
let env: TestEnvironment;
let running: RunningProducer;
let api: ClipLineClient;

/** An operator key of the producer's configuration, as an operator runs `clipline keys` with. */
const OPERATOR_KEY = 'operator-key-of-the-cli-tests';

/** `node dist/cli.js …` against this file's producer with the dev key, run in its storage folder. */
const clipline = cliRunner(() => ({
  cwd: env.config.storageDir,
  env: { CLIPLINE_URL: running.url, CLIPLINE_API_KEY: DEV_API_KEY },
}));

/** `clipline keys …` with the operator key. */
const keys = (args: string[], options: { env?: Record<string, string> } = {}) =>
  clipline(['keys', ...args], { env: { CLIPLINE_API_KEY: OPERATOR_KEY, ...options.env } });

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with "npx tsc -b"`);
  fixture = await producerUnderTest({ ADMIN_API_KEYS: OPERATOR_KEY });
  ({ env, running, api } = fixture);
});

afterAll(() => fixture?.close());

describe('usage', () => {
  it('prints help for the CLI and each command, exit 0', async () => {
    const main = await clipline(['--help']);
    expect(main).toMatchObject({ code: 0, stderr: '' });
    expect(main.stdout).toMatch(/Commands:\n {2}submit <files\|urls\.\.\.>/);
    for (const [command, option] of [
      ['submit', '--download <dir>'],
      ['status', '--json'],
      ['download', '<dir>/<id>/clip-<n>.mp4'],
      ['keys', '--tenant <tenant>'],
    ] as const) {
      const help = await clipline([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: clipline ${command}`);
      expect(help.stdout).toContain(option);
    }
    expect(main.stdout).not.toContain('DATABASE_URL');
    expect((await clipline(['keys', '--help'])).stdout).toMatch(/CLIPLINE_API_KEY\nmust be an operator key/);
  });

  it.each([
    [[], /Usage: clipline <command>/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['submit'], /submit needs at least one file or URL\nRun "clipline submit --help"/],
    [['submit', '--aspect', '4:3', 'a.mp4'], /--aspect must be one of 9:16, 1:1, 16:9, got "4:3"/],
    [['submit', '--clips', '0', 'a.mp4'], /--clips must be a whole number from 1 to 20/],
    [['submit', '--wiat', 'a.mp4'], /unknown option --wiat/],
    [['submit', 'ftp://example.com/a.mp4'], /only http\(s\):\/\/ and file:\/\/ URLs/],
    [['status'], /status needs exactly one video id/],
    [['status', ''], /not a video id: ""/],
    [['status', '..'], /not a video id: "\.\."/],
    [['download', '.'], /not a video id: "\."/],
    [['keys'], /keys needs a command: create, list or revoke/],
    [['keys', 'list', '--name', 'x'], /--name is only for keys create/],
    [['keys', 'list', '--admin'], /--admin is only for keys create/],
    [['keys', 'revoke', 'cl_x', '--tenant', 'acme'], /--tenant is only for keys create/],
    [['keys', 'revoke', ' '], /keys revoke needs exactly one key id or prefix/],
    [['keys', 'create', '--admin=yes'], /option --admin takes no value/],
  ])('%j is a usage error (exit 2) naming the problem', async (args, message) => {
    const run = await clipline(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('names a file that does not exist by its absolute path, before sending anything', async () => {
    const run = await clipline(['submit', 'nowhere/missing.mp4']);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toContain(`no such file: ${path.join(env.config.storageDir, 'nowhere/missing.mp4')}`);
    // A file URL of this machine too; one of another host is the API's to judge.
    const asUrl = await clipline(['submit', 'file:///nowhere/missing.mp4']);
    expect(asUrl).toMatchObject({ code: 2, stdout: '' });
    expect(asUrl.stderr).toContain('no such file: /nowhere/missing.mp4');
    expect((await clipline(['submit', `file://${env.config.storageDir}`])).stderr).toContain(`not a file: ${env.config.storageDir}`);
  });

  it('names a bad variable (exit 2) and a server it cannot reach (exit 1)', async () => {
    const bad = await clipline(['status', 'x'], { env: { CLIPLINE_URL: 'ftp://example.com' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/CLIPLINE_URL="ftp:\/\/example.com": expected an http:\/\/ or https:\/\/ URL/);
    const port = await freePort();
    const unreachable = await clipline(['status', '5d0c9c52-2f57-4a5b-9c55-3b8d0a3c5e11'], { env: { CLIPLINE_URL: `http://127.0.0.1:${port}` } });
    expect(unreachable.code).toBe(1);
    // Three retries for one reason: said once.
    expect(unreachable.stderr.match(/retrying in/g)).toHaveLength(1);
    expect(unreachable.stderr).toMatch(new RegExp(`clipline: could not reach http://127.0.0.1:${port}: ECONNREFUSED\\n$`));
  });
});

describe('submit and status', () => {
  it('submits local files as absolute paths and prints their ids', async () => {
    await mkdir(path.join(env.config.storageDir, 'in'), { recursive: true });
    await writeFile(path.join(env.config.storageDir, 'in', 'a.mp4'), 'not read until a worker ingests it');
    const run = await clipline([
      'submit',
      'in/a.mp4',
      'https://cdn.example.com/b.mp4',
      '--title',
      'Two',
      '--aspect',
      '1:1',
      '--clips',
      '2',
      '--priority',
      'low',
    ]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const [first, second] = lines.map((line) => line.split('  '));
    expect(first![1]).toBe(path.join(env.config.storageDir, 'in', 'a.mp4'));
    expect(second![1]).toBe('https://cdn.example.com/b.mp4');
    const video = await api.getVideo(first![0]!);
    expect(video).toMatchObject({
      source: path.join(env.config.storageDir, 'in', 'a.mp4'),
      title: 'Two',
      options: { aspect: '1:1', clipCount: 2 },
      priority: 'low',
    });
    await Promise.all([first![0]!, second![0]!].map((id) => api.cancelVideo(id)));
  });

  it('shows a video as text and as JSON; a cancelled video exits 1', async () => {
    const { id } = await api.submitVideo({ source: '/srv/media/shown.mp4', title: 'Shown' });
    const text = await clipline(['status', id]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(new RegExp(`^id +${id}\nstatus +queued 0%\ntitle +Shown\nsource +/srv/media/shown.mp4\n`));
    expect(text.stdout).toMatch(/\nSTEP +STATUS +ATTEMPTS +REASON\ningest +pending +0\n/);
    const json = await clipline(['status', id, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ id, status: 'queued', title: 'Shown' });
    await api.cancelVideo(id);
    const cancelled = await clipline(['status', id]);
    expect(cancelled.code).toBe(1);
    expect(cancelled.stdout).toMatch(/status +cancelled\n/);
  });

  it('reports an unknown video with the API detail, exit 1', async () => {
    const run = await clipline(['status', '5d0c9c52-2f57-4a5b-9c55-3b8d0a3c5e11']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('clipline: no video with id 5d0c9c52-2f57-4a5b-9c55-3b8d0a3c5e11 (404 Not Found)\n');
  });
});

describe('keys', () => {
  it('creates a key shown once, which the API accepts until it is revoked', async () => {
    const created = await keys(['create', '--name', 'ci pipeline']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^cl_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}\n$/);
    const key = created.stdout.trim();
    const prefix = key.slice(0, 15);
    expect(created.stderr).toMatch(
      new RegExp(`created API key "ci pipeline" \\(id [0-9a-f-]{36}, prefix ${prefix}, tenant ci-pipeline, role tenant\\); it is shown only this once`),
    );
    expect(await new ApiKeysRepository(env.db).verify(key)).toMatchObject({ name: 'ci pipeline' });

    // A key sees its own tenant's videos: this one is submitted with it.
    const keyed = createClient({ baseUrl: running.url, apiKey: key });
    const { id } = await keyed.submitVideo({ source: '/srv/media/keyed.mp4' });
    expect((await clipline(['status', id], { env: { CLIPLINE_API_KEY: key } })).code).toBe(0);
    await keyed.cancelVideo(id);

    const listed = await keys(['list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ID +PREFIX +NAME +TENANT +ROLE +CREATED +LAST USED +STATUS\n/);
    expect(listed.stdout).toMatch(new RegExp(`${prefix} +ci pipeline +ci-pipeline +tenant +\\d{4}-\\S+ +\\d{4}-\\S+ +active\\n`));
    expect(listed.stdout).not.toContain(key);

    expect(await keys(['revoke', prefix])).toMatchObject({ code: 0, stdout: `revoked ${prefix}\n` });
    const refused = await clipline(['status', id], { env: { CLIPLINE_API_KEY: key } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('clipline: API key is not valid (401 Unauthorized)\n');
    // The whole key names it too (the client sends only its prefix), and its secret is not printed back.
    expect(await keys(['revoke', key])).toMatchObject({ code: 0, stdout: `${prefix} was already revoked\n` });
    expect((await keys(['revoke', key, '--json'])).stdout).toBe(`${JSON.stringify({ key: prefix, outcome: 'already-revoked' })}\n`);
    const json = JSON.parse((await keys(['list', '--json'])).stdout) as { prefix: string; revokedAt: string | null; lastUsedAt: string | null }[];
    expect(json.find((item) => item.prefix === prefix)).toMatchObject({ revokedAt: expect.any(String), lastUsedAt: expect.any(String) });
    expect((await new ApiKeysRepository(env.db).list()).find((row) => row.prefix === prefix)?.revokedAt).toBeInstanceOf(Date);
  });

  it('creates a key for a tenant with --tenant, an operator key with --admin, and lists both', async () => {
    const created = await keys(['create', '--name', 'Acme ops', '--tenant', 'acme', '--admin']);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    const prefix = key.slice(0, 15);
    expect(created.stderr).toMatch(new RegExp(`created API key "Acme ops" \\(id [0-9a-f-]{36}, prefix ${prefix}, tenant acme, role admin\\)`));
    // Read back from the database itself, not from what the command printed.
    const stored = (await new ApiKeysRepository(env.db).list()).find((row) => row.prefix === prefix);
    expect(stored).toMatchObject({ name: 'Acme ops', tenant: 'acme', role: 'admin' });
    expect(await new ApiKeysRepository(env.db).verify(key)).toMatchObject({ tenant: 'acme', role: 'admin' });

    const plain = JSON.parse((await keys(['create', '--name', 'Acme uploader', '--tenant', 'acme', '--json'])).stdout) as {
      prefix: string;
      key: string;
      tenant: string;
      role: string;
    };
    expect(plain).toMatchObject({ tenant: 'acme', role: 'tenant' });

    // The operator key made here manages keys itself.
    const listed = await keys(['list'], { env: { CLIPLINE_API_KEY: key } });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${prefix} +Acme ops +acme +admin +`));
    expect(listed.stdout).toMatch(new RegExp(`${plain.prefix} +Acme uploader +acme +tenant +`));
    const json = JSON.parse((await keys(['list', '--json'])).stdout) as { prefix: string; tenant: string; role: string }[];
    expect(json.find((row) => row.prefix === prefix)).toMatchObject({ tenant: 'acme', role: 'admin' });

    // What the role means to the API: the operator key reads another tenant's video, the tenant key does not.
    const { id } = await api.submitVideo({ source: '/srv/media/other-tenant.mp4' });
    expect(await clipline(['status', id], { env: { CLIPLINE_API_KEY: key } })).toMatchObject({ code: 0 });
    expect(await clipline(['status', id], { env: { CLIPLINE_API_KEY: plain.key } })).toMatchObject({ code: 1, stderr: expect.stringMatching(/404 Not Found/) });
    const download = await clipline(['download', id], { env: { CLIPLINE_API_KEY: plain.key } });
    expect(download).toMatchObject({ code: 1, stderr: `clipline: video ${id} does not exist (or belongs to another tenant)\n` });
    await api.cancelVideo(id);
  });

  it('creates a key as JSON, and fails (exit 1) to revoke a key that does not exist', async () => {
    // A key is named for its service: without a name there is nothing to name its tenant after.
    expect(await keys(['create', '--json'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/keys create needs --name/) });
    const created = JSON.parse((await keys(['create', '--name', 'reports', '--json'])).stdout) as { id: string; name: string; key: string };
    expect(created).toMatchObject({ name: 'reports', key: expect.stringMatching(/^cl_/) });
    const missing = await keys(['revoke', 'cl_000000000000']);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toBe('clipline: no API key with id or prefix "cl_000000000000" (see "clipline keys list")\n');
    const json = await keys(['revoke', 'cl_000000000000', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ key: 'cl_000000000000', outcome: 'not-found' });
  });

  it.each([
    [['--name', 'acme', '--tenant', 'Acme Corp'], /^clipline: tenant must be 1-128 lower-case letters/],
    [['--name', 'Default'], /^clipline: the key's name would make its tenant "default", which is reserved/],
    [['--name', ' '], /^clipline: keys create needs --name/],
  ])('refuses a new key the API refuses (%j) as a usage error (exit 2), creating nothing', async (args, message) => {
    const before = (await new ApiKeysRepository(env.db).list()).length;
    const run = await keys(['create', ...args]);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(/Run "clipline keys --help" for usage\.\n$/);
    expect(await new ApiKeysRepository(env.db).list()).toHaveLength(before);
  });

  it('tells a user whose key is not an operator key to use one, whatever the command (exit 1)', async () => {
    const before = (await new ApiKeysRepository(env.db).list()).length;
    for (const args of [['create', '--name', 'sneaky'], ['list'], ['revoke', 'cl_000000000000']]) {
      const run = await keys(args, { env: { CLIPLINE_API_KEY: DEV_API_KEY } });
      expect(run).toMatchObject({ code: 1, stdout: '' });
      expect(run.stderr).toMatch(
        /^clipline: the API answered 404 Not Found for \/v1\/admin\/keys: "keys" needs an operator key in CLIPLINE_API_KEY \(one of the producer's ADMIN_API_KEYS/,
      );
    }
    expect(await new ApiKeysRepository(env.db).list()).toHaveLength(before);
  });
});

describe('submit --wait with workers', () => {
  const workers: RunningApp[] = [];

  beforeAll(async () => {
    const [ioPort, cpuPort] = await Promise.all([freePort(), freePort()]);
    const appEnv = { ...env.env, HOST: '127.0.0.1', WORKER_IO_METRICS_PORT: String(ioPort), WORKER_CPU_METRICS_PORT: String(cpuPort), CPU_POOL_THREADS: '1' };
    workers.push(startApp('worker-io', appEnv), startApp('worker-cpu', appEnv));
    await Promise.all([waitForHttp(`http://127.0.0.1:${ioPort}/healthz`, workers[0]!), waitForHttp(`http://127.0.0.1:${cpuPort}/healthz`, workers[1]!)]);
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => stopApp(worker)));
  });

  it('follows every video to its end with progress lines, prints a summary table, and exits 1 when one fails', async () => {
    const folder = path.join(env.config.storageDir, 'wait');
    await mkdir(folder, { recursive: true });
    const video = await generateVideo({ path: path.join(folder, 'cuts.mp4'), segments: [1.2, 1.2, 1.2], width: 320, height: 180 });
    await writeFile(path.join(folder, 'notes.mp4'), 'meeting notes, not a video\n'.repeat(20));

    const run = await clipline(['submit', 'wait/cuts.mp4', 'wait/notes.mp4', '--wait', '--title', 'Demo']);
    expect(run.code).toBe(1);
    // Not a terminal: plain lines, one per change, no escape codes.
    expect(run.stderr).not.toContain('\u001b[');
    expect(run.stderr).toMatch(/^\[[0-9a-f]{8}\] cuts\.mp4 queued 0%$/m);
    expect(run.stderr).toMatch(/^\[[0-9a-f]{8}\] cuts\.mp4 completed 100%$/m);
    expect(run.stderr).toMatch(/^\[[0-9a-f]{8}\] notes\.mp4 failed \d+%$/m);

    const [header, ...rows] = run.stdout.trim().split('\n');
    expect(header).toMatch(/^ID +SOURCE +STATUS +DURATION +SCENES +CLIPS +ELAPSED$/);
    const good = rows.find((row) => row.includes('cuts.mp4'))!;
    expect(good).toMatch(new RegExp(`^[0-9a-f-]{36} +cuts\\.mp4 +completed +${video.durationSeconds.toFixed(1)}s +3 +\\S+ +\\d+\\.\\ds$`));
    expect(rows.find((row) => row.includes('notes.mp4'))).toMatch(/ failed +- +0 +0 +\d+\.\ds$/);
    expect(run.stdout).toMatch(/\n[0-9a-f-]{36}: ingest: the content is plain text, not a video\n$/);

    const id = good.split(/ +/)[0]!;
    expect(await api.getVideo(id)).toMatchObject({ source: video.path, title: 'Demo', status: 'completed' });
  });

  it('exits 0 when every video completes, and can report as JSON', async () => {
    const folder = path.join(env.config.storageDir, 'json');
    await mkdir(folder, { recursive: true });
    const video = await generateVideo({ path: path.join(folder, 'short.webm'), segments: [1, 1], width: 160, height: 120, audio: false });
    const run = await clipline(['submit', video.path, '--wait', '--json']);
    expect(run.code).toBe(0);
    const [summary] = JSON.parse(run.stdout) as { source: string; status: string; elapsedSeconds: number; video: { scenes: unknown[] } }[];
    expect(summary).toMatchObject({ source: video.path, status: 'completed', error: null });
    expect(summary!.elapsedSeconds).toBeGreaterThan(0);
    expect(summary!.video.scenes).toHaveLength(2);
  });
});
