#!/usr/bin/env node
// One-command local run: makes sure Redis, the database and ffmpeg are there, builds, migrates,
// then runs the four apps in the foreground with labelled logs. Ctrl-C stops them gracefully;
// a second Ctrl-C kills them. Without DATABASE_URL the database is a SQLite file under .data/;
// with a postgres:// or mysql:// URL that server is used (a local PostgreSQL is started if needed).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, '.data');
const env = { ...process.env };
env.REDIS_URL ||= 'redis://127.0.0.1:6379';
env.DATABASE_URL ||= `sqlite:${path.join(DATA, 'clipline.db')}`;
env.STORAGE_DIR ||= path.join(DATA, 'storage');
const PORT = Number(env.PORT || 3000);
const DASHBOARD_PORT = Number(env.DASHBOARD_PORT || 3001);
const API_KEY = (env.API_KEYS || 'dev-key-clipline').split(',')[0].trim();

const color = process.stdout.isTTY ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_code, text) => text;
const say = (text) => process.stdout.write(`${color(36, '[start]')} ${text}\n`);
function die(text) {
  process.stderr.write(`${color(31, '[start]')} ${text}\n`);
  process.exit(1);
}

const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
const run = (command, args, options = {}) => spawnSync(command, args, { stdio: 'inherit', cwd: ROOT, env, ...options }).status === 0;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const dockerEngine = () => has('docker') && spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;

function reachable(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitReachable(host, port, seconds) {
  for (let i = 0; i < seconds * 4; i++) {
    if (await reachable(host, port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

const isLocal = (host) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);

function composeUp(service) {
  say(`starting ${service} with docker compose`);
  return run('docker', ['compose', 'up', '-d', '--wait', service]);
}

async function ensureRedis() {
  const url = new URL(env.REDIS_URL);
  const host = url.hostname;
  const port = Number(url.port || 6379);
  if (await reachable(host, port)) return say(`Redis answers at ${host}:${port}`);
  if (!isLocal(host)) die(`Redis at ${host}:${port} does not answer (REDIS_URL). Start it, or unset REDIS_URL to use a local one.`);
  if (has('redis-server')) {
    const dir = path.join(DATA, 'redis');
    mkdirSync(dir, { recursive: true });
    say(`starting redis-server on port ${port} (data in ${path.relative(ROOT, dir)})`);
    run('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--dir', dir, '--logfile', path.join(dir, 'redis.log'),
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--save', '',
    ]);
  } else if (dockerEngine()) {
    composeUp('redis');
  } else {
    die('Redis is not running and not installed. Install it with:\n    sudo apt-get install -y redis-server\n  (or set REDIS_URL to a running Redis)');
  }
  if (!(await waitReachable(host, port, 15))) die(`Redis did not come up on ${host}:${port}`);
}

async function ensureMysql() {
  const url = new URL(env.DATABASE_URL);
  const host = url.hostname;
  const port = Number(url.port || 3306);
  if (!(await reachable(host, port))) die(`MySQL/MariaDB at ${host}:${port} does not answer (DATABASE_URL). Start it, or unset DATABASE_URL to use SQLite.`);
  // The migration creates the database when it is missing.
  say(`MySQL/MariaDB answers at ${host}:${port}`);
}

async function ensureDatabase() {
  const scheme = env.DATABASE_URL.split(':')[0].toLowerCase();
  if (scheme === 'sqlite') return say(`database: SQLite file ${env.DATABASE_URL.replace(/^sqlite:(\/\/)?/, '')}`);
  if (scheme === 'mysql' || scheme === 'mariadb') return ensureMysql();
  if (scheme === 'postgres' || scheme === 'postgresql') return ensurePostgres();
  die(`DATABASE_URL must start with postgres://, mysql:// or sqlite: (got ${scheme}:…)`);
}

async function ensurePostgres() {
  const url = new URL(env.DATABASE_URL);
  const host = url.hostname;
  const port = Number(url.port || 5432);
  if (!(await reachable(host, port))) {
    if (!isLocal(host)) die(`PostgreSQL at ${host}:${port} does not answer (DATABASE_URL).`);
    const clusters = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql') : [];
    if (has('pg_ctlcluster') && clusters.length) {
      say(`starting PostgreSQL ${clusters[0]}`);
      run('pg_ctlcluster', ['--skip-systemctl-redirect', clusters[0], 'main', 'start']);
    } else if (dockerEngine()) {
      composeUp('postgres');
    } else {
      die('PostgreSQL is not running and not installed. Install it with:\n    sudo apt-get install -y postgresql\n  (or set DATABASE_URL to a running PostgreSQL)');
    }
    if (!(await waitReachable(host, port, 30))) die(`PostgreSQL did not come up on ${host}:${port}`);
  }
  say(`PostgreSQL answers at ${host}:${port}`);
  // The database itself may not exist yet on a fresh server: create it.
  const { default: pg } = await import('pg');
  const database = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.href });
  try {
    await client.connect();
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) {
      say(`creating database ${database}`);
      await client.query(`create database "${database.replace(/"/g, '""')}"`);
    }
  } catch (error) {
    die(`cannot prepare database ${database}: ${error.message}`);
  } finally {
    await client.end().catch(() => {});
  }
}

function ensureFfmpeg() {
  if (has(env.FFMPEG_PATH || 'ffmpeg') && has(env.FFPROBE_PATH || 'ffprobe')) return say('ffmpeg found');
  if (isRoot && has('apt-get')) {
    say('ffmpeg is missing: installing it with apt-get');
    if (run('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg'])) return;
  }
  die('ffmpeg is not installed. Install it with:\n    sudo apt-get install -y ffmpeg\n  (or set FFMPEG_PATH and FFPROBE_PATH)');
}

function sampleVideo() {
  const file = path.join(DATA, 'samples', 'sample.mp4');
  if (existsSync(file)) return file;
  mkdirSync(path.dirname(file), { recursive: true });
  say('generating a sample video with known scene cuts (3 s, 6 s, 9 s)');
  const sources = ['testsrc2', 'smptebars', 'mandelbrot', 'rgbtestsrc'];
  const inputs = sources.flatMap((source) => ['-f', 'lavfi', '-i', `${source}=size=640x360:rate=25`]);
  const trims = sources.map((_, i) => `[${i}:v]trim=end_frame=75,setpts=PTS-STARTPTS[s${i}]`).join(';');
  const ok = run('ffmpeg', [
    '-v', 'error', '-y', ...inputs, '-f', 'lavfi', '-t', '12', '-i', 'sine=frequency=440',
    '-filter_complex', `${trims};[s0][s1][s2][s3]concat=n=4:v=1:a=0,format=yuv420p[v]`,
    '-map', '[v]', '-map', '4:a', '-c:v', 'libx264', '-preset', 'veryfast', '-c:a', 'aac', '-t', '12', file,
  ]);
  if (!ok) die('could not generate the sample video with ffmpeg');
  return file;
}

/** Turns pino JSON lines into short readable ones; other lines pass through. */
function formatLine(line) {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line);
    const levels = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
    const level = levels[entry.level] ?? entry.level;
    const tint = entry.level >= 50 ? 31 : entry.level >= 40 ? 33 : 2;
    const extras = ['queue', 'jobId', 'reason', 'videoId', 'port']
      .filter((key) => entry[key] !== undefined)
      .map((key) => `${key}=${entry[key]}`);
    const error = entry.err?.message ? ` ${entry.err.message}` : '';
    return `${color(tint, level.padEnd(5))} ${entry.msg ?? ''}${error}${extras.length ? ` ${color(2, extras.join(' '))}` : ''}`;
  } catch {
    return line;
  }
}

const APPS = [
  ['producer', 35, 'apps/producer/dist/main.js'],
  ['worker-io', 32, 'apps/worker-io/dist/main.js'],
  ['worker-cpu', 33, 'apps/worker-cpu/dist/main.js'],
  ['dashboard', 34, 'apps/dashboard/dist/main.js'],
];

// With no provider key configured, the AI steps talk to the upstream simulator, started here too.
const PROVIDER_KEYS = ['OPENAI_API_KEY', 'STABILITY_API_KEY', 'ELEVENLABS_API_KEY', 'YOUTUBE_API_KEY'];
const SIMULATED = !env.UPSTREAM_SIM_URL && PROVIDER_KEYS.every((name) => !env[name]);
if (SIMULATED) {
  const port = env.UPSTREAM_SIM_PORT || '3900';
  env.UPSTREAM_SIM_URL = `http://127.0.0.1:${port}`;
  APPS.unshift(['upstream-sim', 36, 'infra/upstream-sim/dist/main.js']);
}

function startApps() {
  const children = APPS.map(([name, tint, main]) => {
    // Own process group: a terminal Ctrl-C reaches only this script, which forwards it once.
    const child = spawn(process.execPath, [path.join(ROOT, main)], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const label = color(tint, `[${name}]`.padEnd(14));
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.on('data', (chunk) => {
        const lines = (rest + chunk.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) process.stdout.write(`${label} ${formatLine(line)}\n`);
      });
    }
    return { name, child };
  });
  let stopping = false;
  const stopAll = (signal) => {
    if (stopping) {
      say('second signal: killing the apps');
      for (const { child } of children) child.kill('SIGKILL');
      return;
    }
    stopping = true;
    say('stopping the apps (Ctrl-C again to kill them)');
    for (const { child } of children) if (child.exitCode === null) child.kill(signal);
  };
  process.on('SIGINT', () => stopAll('SIGINT'));
  process.on('SIGTERM', () => stopAll('SIGTERM'));
  process.on('exit', () => {
    for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL');
  });
  let worst = 0;
  let remaining = children.length;
  for (const { name, child } of children) {
    child.on('exit', (code, signal) => {
      remaining--;
      if (!stopping) {
        say(`${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping the others`);
        worst = 1;
        stopAll('SIGTERM');
      } else if (code) worst = Math.max(worst, code);
      if (remaining === 0) {
        say('all apps stopped');
        process.exit(worst);
      }
    });
  }
}

async function main() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) die(`Node.js >= 20.19 is required (this is ${process.versions.node})`);
  if (!existsSync(path.join(ROOT, 'node_modules'))) die('dependencies are missing: run "npm ci" first');
  ensureFfmpeg();
  await ensureRedis();
  await ensureDatabase();
  say('building (tsc -b)');
  if (!run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'])) die('the build failed');
  say('running migrations');
  if (!run(process.execPath, [path.join(ROOT, 'packages', 'shared', 'dist', 'db', 'migrate-cli.js')])) die('migrations failed');
  const sample = sampleVideo();
  startApps();
  const base = `http://127.0.0.1:${PORT}`;
  for (let i = 0; i < 120; i++) {
    const ready = await fetch(`${base}/readyz`).then((res) => res.ok, () => false);
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const lines = [
    '',
    `  API        ${base}   (API key: ${API_KEY})`,
    `  Dashboard  http://127.0.0.1:${DASHBOARD_PORT}   (user ${env.DASHBOARD_USER || 'admin'}, password ${env.DASHBOARD_PASSWORD ? '<DASHBOARD_PASSWORD>' : 'clipline'})`,
    SIMULATED ? `  AI APIs    ${env.UPSTREAM_SIM_URL}   (upstream simulator: no provider key is set)` : '  AI APIs    the providers whose keys are set',
    '',
    '  Submit the sample video:',
    `    curl -s -X POST ${base}/v1/videos -H 'Authorization: Bearer ${API_KEY}' -H 'Content-Type: application/json' -d '{"source": "${sample}", "title": "sample"}'`,
    '  Then follow it:',
    `    curl -s ${base}/v1/videos/<id> -H 'Authorization: Bearer ${API_KEY}'`,
    '  And save its clips, thumbnails and voice-overs once it is completed:',
    `    CLIPLINE_API_KEY=${API_KEY} npx clipline download <id> --out clips`,
    '',
    `  Listening on ${env.HOST || '127.0.0.1'} only${env.HOST ? '' : ' (set HOST=0.0.0.0 to serve other hosts, with keys of your own)'}.`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error) => die(error.stack ?? String(error)));
