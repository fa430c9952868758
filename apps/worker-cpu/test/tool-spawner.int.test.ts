import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { spawnTool } from '../src/analysis/ffmpeg.js';
import { type ToolChild, ToolSpawner, ToolStartError } from '../src/analysis/tool-spawner.js';

const spawner = new ToolSpawner();

afterAll(() => spawner.close());

function start(script: string, fd3 = false): Promise<ToolChild> {
  return spawner.start({ command: 'sh', args: ['-c', script], fd3, niceness: 10 });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Fields of /proc/<pid>/stat after the command name: [0] is the state, [1] the parent, [16] the niceness. */
function stat(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  const fields = stat(pid);
  return fields !== null && fields[0] !== 'Z';
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The pid a `sh -c 'echo $$; …'` child prints first. */
async function firstLinePid(stream: Readable): Promise<number> {
  let text = '';
  for await (const chunk of stream) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return Number(text.split('\n')[0]);
}

describe('the spawner process', () => {
  it('delivers every byte of stdout, stderr and fd 3, and the exit code, once the streams are read', async () => {
    // About 24 MB of stdout: well past any socket buffer, so the child blocks on a slow reader and resumes.
    const child = await start('seq 1 3200000; seq 1 50000 >&3; echo done >&2; exit 3', true);
    const [out, err, three] = await Promise.all([readAll(child.stdout), readAll(child.stderr), readAll(child.fd3!)]);
    expect(await child.closed).toEqual({ code: 3, signal: null });
    const expected = (count: number) => `${Array.from({ length: count }, (_, n) => n + 1).join('\n')}\n`;
    expect(out.length).toBeGreaterThan(23_000_000);
    expect(createHash('sha256').update(out).digest('hex')).toBe(createHash('sha256').update(expected(3_200_000)).digest('hex'));
    expect(String(three)).toBe(expected(50_000));
    expect(String(err)).toBe('done\n');
    expect(child.running()).toBe(false);
  });

  it('starts children as its own, niced, so this process is never forked', async () => {
    const child = await start('echo $$; exec sleep 30');
    const pid = await firstLinePid(child.stdout);
    const fields = stat(pid)!;
    expect(Number(fields[1])).toBe(spawner.pid);
    expect(Number(fields[1])).not.toBe(process.pid);
    expect(Number(fields[16])).toBe(10);
    expect(child.running()).toBe(true);
    child.kill('SIGKILL');
    expect(await child.closed).toEqual({ code: null, signal: 'SIGKILL' });
    expect(alive(pid)).toBe(false);
  });

  it('gives the child blocking streams, as pipes of its own would be', async () => {
    const child = await start('grep -H flags /proc/self/fdinfo/1 /proc/self/fdinfo/2 /proc/self/fdinfo/3 >&3', true);
    const [, , three] = await Promise.all([readAll(child.stdout), readAll(child.stderr), readAll(child.fd3!)]);
    const flags = [...String(three).matchAll(/fdinfo\/(\d):flags:\s+(\d+)/g)].map(([, fd, octal]) => [Number(fd), Number.parseInt(octal!, 8)]);
    expect(flags.map(([fd]) => fd)).toEqual([1, 2, 3]);
    const O_NONBLOCK = 0o4000;
    for (const [, value] of flags) expect(value! & O_NONBLOCK).toBe(0);
  });

  it('reports a tool that does not exist as a start error, and spawnTool says how to install it', async () => {
    const child = await spawner.start({ command: '/nonexistent/ffmpeg', args: [], fd3: false, niceness: 10 });
    const error = await child.closed.then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    expect(error).toBeInstanceOf(ToolStartError);
    expect((error as ToolStartError).code).toBe('ENOENT');
    expect(await readAll(child.stdout)).toHaveLength(0);
    const run = await spawnTool('/nonexistent/ffmpeg', ['-version']);
    await expect(run.exited).rejects.toThrow('/nonexistent/ffmpeg not found: install ffmpeg (apt-get install -y ffmpeg) or set FFMPEG_PATH/FFPROBE_PATH');
  });

  it('stops a run with the signal asked for', async () => {
    const child = await start('echo $$; exec sleep 30');
    child.kill('SIGTERM');
    expect(await child.closed).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('keeps many runs apart: each gets its own bytes', async () => {
    // Each run read as soon as it starts, as spawnTool's callers do.
    const runs = await Promise.all(
      Array.from({ length: 12 }, async (_, n) => {
        const child = await start(`seq 1 ${1000 * (n + 1)}; echo run ${n} >&2`);
        return { child, read: Promise.all([readAll(child.stdout).then(String), readAll(child.stderr).then(String)]) };
      }),
    );
    const outputs = await Promise.all(runs.map(({ read }) => read));
    outputs.forEach(([out, err], n) => {
      const lines = out!.trim().split('\n');
      expect(lines).toHaveLength(1000 * (n + 1));
      expect(lines.at(-1)).toBe(String(1000 * (n + 1)));
      expect(err).toBe(`run ${n}\n`);
    });
    await Promise.all(runs.map(({ child }) => expect(child.closed).resolves.toEqual({ code: 0, signal: null })));
  });

  it('when the spawner dies, its runs are killed and fail saying so, and the next start forks a new one', async () => {
    const child = await start('echo $$; exec sleep 30');
    const pid = await firstLinePid(child.stdout);
    const first = spawner.pid!;
    process.kill(first, 'SIGKILL');
    await expect(child.closed).rejects.toThrow("ffmpeg's spawner process was killed by SIGKILL; its runs were stopped");
    await until(() => !alive(pid));
    const next = await start('echo again');
    expect(String(await readAll(next.stdout))).toBe('again\n');
    expect(await next.closed).toEqual({ code: 0, signal: null });
    expect(spawner.pid).not.toBe(first);
  });

  it('a spawner that answers no start (stopped) is killed when the start times out, and replaced', async () => {
    // Long enough for the replacement to start on a loaded machine (a full test run beside it):
    // at 1 s its first start timed out too, and answered with an empty stream.
    const impatient = new ToolSpawner(4_000);
    try {
      const running = await impatient.start({ command: 'sh', args: ['-c', 'echo $$; exec sleep 30'], fd3: false, niceness: 10 });
      const pid = await firstLinePid(running.stdout);
      const stopped = impatient.pid!;
      process.kill(stopped, 'SIGSTOP');
      const started = Date.now();
      const child = await impatient.start({ command: 'echo', args: ['never'], fd3: false, niceness: 10 });
      await expect(child.closed).rejects.toThrow("ffmpeg's spawner process was killed by SIGKILL; its runs were stopped");
      expect(Date.now() - started).toBeGreaterThanOrEqual(3_900);
      await expect(running.closed).rejects.toThrow('its runs were stopped');
      await until(() => !alive(pid));
      const next = await impatient.start({ command: 'echo', args: ['again'], fd3: false, niceness: 10 });
      expect(String(await readAll(next.stdout))).toBe('again\n');
      expect(impatient.pid).not.toBe(stopped);
    } finally {
      impatient.close();
    }
  });

  it('fails and stops a run whose streams never connect after its start, instead of waiting for them for good', async () => {
    // A spawner that answers every start but connects nothing (as when no file handle is left to accept the streams).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'clipline-mute-spawner-'));
    const module = path.join(dir, 'mute-spawner.mjs');
    writeFileSync(
      module,
      [
        "process.on('message', (m) => {",
        "  if (m.op === 'start') process.send({ op: 'started', id: m.id, pid: process.pid });",
        "  if (m.op === 'kill') process.send({ op: 'exit', id: m.id, code: null, signal: m.signal });",
        '});',
        "process.on('disconnect', () => process.exit(0));",
      ].join('\n'),
    );
    // 3 s: the same limit holds the fork of the spawner itself to answer its first start, slow on a loaded machine.
    const mute = new ToolSpawner(3_000, module);
    try {
      const started = Date.now();
      const child = await mute.start({ command: 'echo', args: ['never read'], fd3: false, niceness: 10 });
      await expect(child.closed).rejects.toThrow("the tool's output streams did not connect within 3 s of its start; it was stopped");
      expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    } finally {
      mute.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process group): it goes with the process it serves', async () => {
    const child = await start('echo $$; exec sleep 30');
    const pid = await firstLinePid(child.stdout);
    process.kill(spawner.pid!, 'SIGINT');
    process.kill(spawner.pid!, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(alive(spawner.pid!)).toBe(true);
    expect(child.running()).toBe(true);
    child.kill('SIGKILL');
    expect(await child.closed).toEqual({ code: null, signal: 'SIGKILL' });
    expect(alive(pid)).toBe(false);
  });

  it("when the process it serves goes, it kills the children still running, removes the sockets' folder and exits", async () => {
    // A process of its own with a spawner and one long run; it prints both pids and dies.
    const modulePath = fileURLToPath(new URL('../dist/analysis/tool-spawner.js', import.meta.url));
    const script = `
      const { ToolSpawner } = await import(${JSON.stringify(modulePath)});
      const spawner = new ToolSpawner();
      const child = await spawner.start({ command: 'sh', args: ['-c', 'echo $$; exec sleep 60'], fd3: false, niceness: 10 });
      child.stdout.once('data', (line) => { console.log(spawner.pid, String(line).trim(), spawner.dir); process.kill(process.pid, 'SIGKILL'); });`;
    const host = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: path.dirname(modulePath) });
    const [spawnerPid, childPid, socketDir] = String(await readAll(host.stdout))
      .trim()
      .split(' ');
    expect(Number(spawnerPid)).toBeGreaterThan(0);
    expect(Number(childPid)).toBeGreaterThan(0);
    expect(socketDir).toMatch(/clipline-spawn-/);
    await until(() => !alive(Number(childPid)) && !alive(Number(spawnerPid)));
    // Killed by SIGKILL, the process removed nothing itself: its spawner removed the sockets' folder.
    expect(existsSync(socketDir!)).toBe(false);
  });
});

describe('tools started through the spawner by default', () => {
  it('run ffmpeg with its streams: a test pattern decoded to raw frames arrives whole', async () => {
    const run = await spawnTool('ffmpeg', [
      '-nostdin',
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=64x48:rate=10:duration=3',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      'pipe:1',
    ]);
    const frames = await readAll(run.output.stdout);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(frames).toHaveLength(30 * 64 * 48 * 3);
    const shell = await spawnTool('sh', ['-c', 'echo $PPID']);
    const parent = Number(String(await readAll(shell.output.stdout)));
    expect(parent).toBeGreaterThan(0);
    expect(parent).not.toBe(process.pid);
  });

  it('a tool that exits before its caller reads still gives all it printed', async () => {
    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, n) => spawnTool('echo', [`quick ${n}`]).then((run) => readAll(run.output.stdout).then(String))),
    );
    expect(runs).toEqual(Array.from({ length: 20 }, (_, n) => `quick ${n}\n`));
  });

  it('an abort before the start is answered still ends the run', async () => {
    const controller = new AbortController();
    const run = spawnTool('sleep', ['30'], controller.signal);
    controller.abort(new Error('job cancelled'));
    expect(await (await run).exited).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
