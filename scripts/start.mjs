#!/usr/bin/env node
// One-command local run: builds, reads the configuration the apps will read (the built
// @clipline/shared config: same defaults, same validation), makes sure Redis, the database and
// ffmpeg are there, migrates, then runs the four apps in the foreground with labelled logs and
// prints the URLs once every app answers its health check. Ctrl-C stops them gracefully; a second
// Ctrl-C kills them. Without DATABASE_URL the database is a SQLite file under .data/; with a
// postgres:// or mysql:// URL that server is used (a local PostgreSQL is started if needed).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The apps run from the root, and the config's relative defaults (.data/…) resolve against it.
process.chdir(ROOT);
const DATA = path.join(ROOT, '.data');
const env = { ...process.env };
/** Seconds the apps get to answer their health checks before the start is declared failed. */
const READY_TIMEOUT_SECONDS = 90;
// The same signal again this soon is one Ctrl-C delivered twice (REPEATED_SIGNAL_MS in packages/shared/src/shutdown.ts).
const REPEATED_SIGNAL_MS = 500;

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

const isLocal = (host) => ['127.0.0.1', 'localhost', '::1'].includes(host);

/** A URL's host as sockets take it: an IPv6 address without its brackets (`[::1]` → `::1`). */
const socketHost = (url) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * Starts Redis or PostgreSQL in a container of its own with its port published on the loopback
 * only: the compose file's services publish no port (inside compose only its network reaches
 * them), and it needs production secrets set. The container of an earlier start is reused.
 */
function dockerRun(service, args) {
  const container = `clipline-dev-${service}`;
  if (spawnSync('docker', ['start', container], { stdio: 'ignore' }).status === 0) return say(`started the container ${container} again`);
  say(`starting ${service} in the container ${container}`);
  return run('docker', ['run', '-d', '--name', container, ...args]);
}

async function ensureRedis(config, shared) {
  const cluster = shared.parseClusterUrl(config.redisUrl);
  if (cluster) {
    // A Redis Cluster is never started here: one node that answers is enough to find the others.
    for (const { host, port } of cluster.nodes) if (await reachable(host, port)) return say(`Redis Cluster node answers at ${host}:${port}`);
    die('no node of the Redis Cluster answers (REDIS_URL / REDIS_CLUSTER_NODES). Start the cluster, or unset them to use a local Redis.');
  }
  const url = new URL(config.redisUrl);
  const host = socketHost(url);
  const port = Number(url.port || 6379);
  if (await reachable(host, port)) return say(`Redis answers at ${host}:${port}`);
  if (!isLocal(host)) die(`Redis at ${host}:${port} does not answer (REDIS_URL). Start it, or unset REDIS_URL to use a local one.`);
  if (has('redis-server')) {
    const dir = path.join(DATA, 'redis');
    mkdirSync(dir, { recursive: true });
    say(`starting redis-server on port ${port} (data in ${path.relative(ROOT, dir)})`);
    run('redis-server', [
      '--port',
      String(port),
      // The IPv6 loopback too when REDIS_URL names it (redis-server before 6.2 knows no optional '-' address).
      '--bind',
      '127.0.0.1',
      ...(host === '::1' ? ['::1'] : []),
      '--daemonize',
      'yes',
      '--dir',
      dir,
      '--logfile',
      path.join(dir, 'redis.log'),
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--maxmemory-policy',
      'noeviction',
      '--save',
      '',
    ]);
  } else if (dockerEngine()) {
    // Protected mode would refuse the published port's connections, which come from the bridge.
    const settings = ['--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--protected-mode', 'no'];
    dockerRun('redis', ['-p', `127.0.0.1:${port}:6379`, 'redis:7', 'redis-server', ...settings]);
  } else {
    die('Redis is not running and not installed. Install it with:\n    sudo apt-get install -y redis-server\n  (or set REDIS_URL to a running Redis)');
  }
  if (!(await waitReachable(host, port, 15))) die(`Redis did not come up on ${host}:${port}`);
}

/**
 * Makes sure the database server answers (starting a local PostgreSQL when it is down). The
 * engine and address come from the config's database target; the migration creates the database
 * itself when the server lacks it (see createDatabaseIfMissing).
 */
async function ensureDatabase(shared, config) {
  const target = shared.resolveDatabaseTarget(config.databaseUrl, config.databaseSchema);
  const where = shared.describeDatabaseTarget(target);
  if (target.engine === 'sqlite') return say(`database: ${where}`);
  if (target.engine === 'mysql') {
    if (!(await reachable(target.host, target.port))) die(`${where} does not answer (DATABASE_URL). Start it, or unset DATABASE_URL to use SQLite.`);
    return say(`database: ${where} answers`);
  }
  await ensurePostgres(new URL(target.url));
  say(`database: ${where} answers`);
}

async function ensurePostgres(url) {
  const host = socketHost(url);
  const port = Number(url.port || 5432);
  if (!(await reachable(host, port))) {
    if (!isLocal(host)) die(`PostgreSQL at ${host}:${port} does not answer (DATABASE_URL).`);
    const clusters = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql') : [];
    if (has('pg_ctlcluster') && clusters.length) {
      say(`starting PostgreSQL ${clusters[0]}`);
      run('pg_ctlcluster', ['--skip-systemctl-redirect', clusters[0], 'main', 'start']);
    } else if (dockerEngine()) {
      // The user, password and database the URL names (a URL without a password: trust on the loopback).
      const user = decodeURIComponent(url.username) || 'postgres';
      const password = decodeURIComponent(url.password);
      const database = decodeURIComponent(url.pathname.slice(1)) || user;
      const auth = password ? ['-e', `POSTGRES_PASSWORD=${password}`] : ['-e', 'POSTGRES_HOST_AUTH_METHOD=trust'];
      dockerRun('postgres', ['-p', `127.0.0.1:${port}:5432`, '-e', `POSTGRES_USER=${user}`, '-e', `POSTGRES_DB=${database}`, ...auth, 'postgres:16']);
    } else {
      die(
        'PostgreSQL is not running and not installed. Install it with:\n    sudo apt-get install -y postgresql\n  (or set DATABASE_URL to a running PostgreSQL)',
      );
    }
    if (!(await waitReachable(host, port, 30))) die(`PostgreSQL did not come up on ${host}:${port}`);
  }
}

function ensureFfmpeg(config) {
  if (has(config.ffmpegPath) && has(config.ffprobePath)) return say('ffmpeg found');
  if (isRoot && has('apt-get')) {
    say('ffmpeg is missing: installing it with apt-get');
    if (run('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg'])) return;
  }
  die('ffmpeg is not installed. Install it with:\n    sudo apt-get install -y ffmpeg\n  (or set FFMPEG_PATH and FFPROBE_PATH)');
}

function sampleVideo(config) {
  const file = path.join(DATA, 'samples', 'sample.mp4');
  if (existsSync(file)) return file;
  mkdirSync(path.dirname(file), { recursive: true });
  say('generating a sample video with known scene cuts (3 s, 6 s, 9 s)');
  const sources = ['testsrc2', 'smptebars', 'mandelbrot', 'rgbtestsrc'];
  const inputs = sources.flatMap((source) => ['-f', 'lavfi', '-i', `${source}=size=640x360:rate=25`]);
  const trims = sources.map((_, i) => `[${i}:v]trim=end_frame=75,setpts=PTS-STARTPTS[s${i}]`).join(';');
  const ok = run(config.ffmpegPath, [
    '-v',
    'error',
    '-y',
    ...inputs,
    '-f',
    'lavfi',
    '-t',
    '12',
    '-i',
    'sine=frequency=440',
    '-filter_complex',
    `${trims};[s0][s1][s2][s3]concat=n=4:v=1:a=0,format=yuv420p[v]`,
    '-map',
    '[v]',
    '-map',
    '4:a',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-c:a',
    'aac',
    '-t',
    '12',
    file,
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
    const extras = ['queue', 'jobId', 'reason', 'videoId', 'port'].filter((key) => entry[key] !== undefined).map((key) => `${key}=${entry[key]}`);
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

function startApps(apps) {
  const children = apps.map(([name, tint, main]) => {
    // Own process group: a terminal Ctrl-C reaches only this script, which forwards it once. The
    // IPC channel is how an app learns that this script is gone (killed, or its terminal closed)
    // and stops, instead of running on unseen.
    const child = spawn(process.execPath, [path.join(ROOT, main)], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
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
  let firstSignal;
  const stopAll = (signal) => {
    if (stopping) {
      // npm forwards the Ctrl-C the terminal also sent here: the same press, not a second one.
      if (signal === firstSignal?.signal && Date.now() - firstSignal.at < REPEATED_SIGNAL_MS) return;
      say('second signal: killing the apps');
      for (const { child } of children) child.kill('SIGKILL');
      return;
    }
    stopping = true;
    firstSignal = { signal, at: Date.now() };
    say('stopping the apps (Ctrl-C again to kill them)');
    for (const { child } of children) if (child.exitCode === null) child.kill(signal);
  };
  process.on('SIGINT', () => stopAll('SIGINT'));
  process.on('SIGTERM', () => stopAll('SIGTERM'));
  // The terminal closed: stop the apps as on a Ctrl-C (their IPC channel covers a kill of this script).
  process.on('SIGHUP', () => stopAll('SIGTERM'));
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
        process.exit(Math.max(worst, process.exitCode ?? 0));
      }
    });
  }
  return { stopAll, isStopping: () => stopping };
}

/** Where this machine reaches a listener bound to `host`: loopback for every address. */
function reachableHost(host) {
  if (['0.0.0.0', '::', '[::]'].includes(host)) return '127.0.0.1';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** The health check of every app that serves one; `ready` when all of them answer 200. */
function healthChecks(config, simulatorUrl) {
  const host = reachableHost(config.host);
  const checks = [
    ['producer', `http://${host}:${config.port}/readyz`],
    ['dashboard', `http://${host}:${config.dashboardPort}/healthz`],
    // Port 0 means an ephemeral metrics port, which cannot be known from here.
    ...(config.workerIoMetricsPort ? [['worker-io', `http://${host}:${config.workerIoMetricsPort}/healthz`]] : []),
    ...(config.workerCpuMetricsPort ? [['worker-cpu', `http://${host}:${config.workerCpuMetricsPort}/healthz`]] : []),
    ...(simulatorUrl ? [['upstream-sim', `${simulatorUrl}/_sim/health`]] : []),
  ];
  return checks.map(([name, url]) => ({ name, url }));
}

/** What a health check answered: undefined when ready, otherwise why not. */
async function notReadyReason({ url }) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (res.ok) return undefined;
    return `${url} answers ${res.status} ${(await res.text()).slice(0, 200)}`;
  } catch (error) {
    return `${url} does not answer (${error.cause?.code ?? error.message})`;
  }
}

/**
 * Waits until every app answers its health check (the producer's /readyz covers Redis and the
 * database). Says every 15 s which ones are still not ready; after READY_TIMEOUT_SECONDS names
 * them and returns false; returns false as well once the apps are being stopped (Ctrl-C, or an
 * app that exited: see startApps).
 */
async function waitUntilReady(checks, isStopping) {
  const started = Date.now();
  let lastReport = started;
  for (;;) {
    if (isStopping()) return false;
    const reasons = (await Promise.all(checks.map(async (check) => [check.name, await notReadyReason(check)]))).filter(([, reason]) => reason);
    if (reasons.length === 0) return true;
    const waited = Math.round((Date.now() - started) / 1000);
    const list = reasons.map(([name, reason]) => `\n    ${name}: ${reason}`).join('');
    if (waited >= READY_TIMEOUT_SECONDS) {
      process.stderr.write(`${color(31, '[start]')} not ready after ${waited} s:${list}\n`);
      return false;
    }
    if (Date.now() - lastReport >= 15_000) {
      lastReport = Date.now();
      say(`still waiting after ${waited} s for:${list}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Imports a module of the build (after `tsc -b`), e.g. the shared config. */
const built = (relative) => import(pathToFileURL(path.join(ROOT, relative)).href);

/** Settings from the environment, or the reason they are refused (exit 78, as the apps would). */
function settingsOrDie(load, ConfigError) {
  try {
    return load(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${color(31, '[start]')} ${error.message}\n`);
    process.exit(78);
  }
}

async function main() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) die(`Node.js >= 20.19 is required (this is ${process.versions.node})`);
  if (!existsSync(path.join(ROOT, 'node_modules'))) die('dependencies are missing: run "npm ci" first');
  // Build first: the configuration below is the apps' own, from the build.
  say('building (tsc -b)');
  if (!run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'])) die('the build failed');
  const shared = await built('packages/shared/dist/index.js');
  let config = settingsOrDie(shared.loadConfig, shared.ConfigError);

  // With no provider key configured, the AI steps talk to the upstream simulator, started here too.
  const apps = [...APPS];
  const providers = [config.providers.youtube, config.providers.openai, config.providers.stability, config.providers.elevenlabs];
  const simulated = config.env !== 'production' && !env.UPSTREAM_SIM_URL && providers.every((provider) => provider.apiKey === undefined);
  if (simulated) {
    const { loadSimSettings } = await built('infra/upstream-sim/dist/sim-config.js');
    const sim = settingsOrDie(loadSimSettings, shared.ConfigError);
    env.UPSTREAM_SIM_URL = `http://${reachableHost(sim.host)}:${sim.port}`;
    config = settingsOrDie(shared.loadConfig, shared.ConfigError);
    apps.unshift(['upstream-sim', 36, 'infra/upstream-sim/dist/main.js']);
  }

  ensureFfmpeg(config);
  await ensureRedis(config, shared);
  await ensureDatabase(shared, config);
  say('running migrations');
  if (!run(process.execPath, [path.join(ROOT, 'packages', 'shared', 'dist', 'db', 'migrate-cli.js')])) die('migrations failed');
  const sample = sampleVideo(config);
  const running = startApps(apps);
  if (!(await waitUntilReady(healthChecks(config, simulated ? env.UPSTREAM_SIM_URL : undefined), running.isStopping))) {
    if (running.isStopping()) return;
    process.exitCode = 1;
    say('stopping the apps: they did not all become ready');
    running.stopAll('SIGTERM');
    return;
  }

  const base = `http://${reachableHost(config.host)}:${config.port}`;
  const apiKey = config.apiKeys[0];
  const devPassword = config.env !== 'production' && config.dashboardPassword === shared.DEV_DASHBOARD_PASSWORD;
  const loopback = ['127.0.0.1', 'localhost', '::1'].includes(config.host);
  // The CLI talks to http://127.0.0.1:3000 unless told otherwise.
  const cliUrl = base === 'http://127.0.0.1:3000' ? '' : `CLIPLINE_URL=${base} `;
  const lines = [
    '',
    `  API        ${base}   (API key: ${apiKey})`,
    `  Dashboard  ${base.replace(/:\d+$/, `:${config.dashboardPort}`)}   (user ${config.dashboardUser}, password ${devPassword ? config.dashboardPassword : '<DASHBOARD_PASSWORD>'})`,
    simulated ? `  AI APIs    ${env.UPSTREAM_SIM_URL}   (upstream simulator: no provider key is set)` : '  AI APIs    the providers whose keys are set',
    '',
    '  Submit the sample video:',
    `    curl -s -X POST ${base}/v1/videos -H 'Authorization: Bearer ${apiKey}' -H 'Content-Type: application/json' -d '{"source": "${sample}", "title": "sample"}'`,
    '  Then follow it:',
    `    curl -s ${base}/v1/videos/<id> -H 'Authorization: Bearer ${apiKey}'`,
    '  And save its clips, thumbnails and voice-overs once it is completed:',
    `    ${cliUrl}CLIPLINE_API_KEY=${apiKey} npx clipline download <id> --out clips`,
    ...(config.adminApiKeys.includes(shared.DEV_ADMIN_API_KEY)
      ? [
          '  Make a key for another service (a tenant of its own) with the dev operator key:',
          `    ${cliUrl}CLIPLINE_API_KEY=${shared.DEV_ADMIN_API_KEY} npx clipline keys create --name my-service`,
        ]
      : []),
    '',
    `  Listening on ${config.host} only${loopback ? ' (set HOST=0.0.0.0 to serve other hosts, with keys of your own)' : ''}.`,
    '',
  ];
  say('ready: every app answers its health check');
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error) => die(error.stack ?? String(error)));
