/**
 * infra/Dockerfile, checked step by step without a Docker engine and in seconds: the context laid
 * out as .dockerignore leaves it, each stage's filesystem as its COPY instructions fill it, the
 * preconditions of each RUN (npm ci sees every workspace manifest and the lock and nothing else;
 * tsc -b sees every project the root tsconfig references and all their sources), the runtime
 * image holding every process it can start, and the production install checked against what the
 * shipped code imports. docker-compose.yml is checked to validate and to start only what the
 * image holds. Running every stage for real takes minutes: docker-build-full.test.ts, with
 * CLIPLINE_DOCKER_BUILD=full.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildContext } from './support/build-context.js';
import { existsIn, interpretDockerfile, type Stage } from './support/dockerfile.js';
import { projectRunModel } from './support/image.js';
import { readmeVariables } from './support/readme-variables.js';
import { type Manifest, nodeScript, readJson, readText, ROOT, sourceOf, sourcesMatch, tsProjects, workspaces } from './support/workspace.js';

const DOCKERFILE = readText('infra/Dockerfile');
const context = buildContext(ROOT);

const stages = interpretDockerfile(DOCKERFILE, { files: context.files }, projectRunModel);
const stage = (name: string): Stage => {
  const found = stages.get(name);
  if (!found) throw new Error(`infra/Dockerfile has no stage ${name}`);
  return found;
};
const runtime = [...stages.values()].at(-1)!;

/** Every RUN step of every stage whose command matches. */
function runsMatching(pattern: RegExp) {
  return [...stages.values()].flatMap((each) => each.runs.filter((run) => pattern.test(run.command)).map((run) => ({ stage: each, run })));
}

describe('the build context (.dockerignore)', () => {
  it('leaves out installs, build outputs, secrets, tests and deployment files, and keeps the simulator the build compiles', () => {
    const leftOut = ['node_modules/jest/package.json', 'apps/producer/dist/main.js', 'infra/upstream-sim/dist/main.js', 'apps/producer/dist/.tsbuildinfo'];
    leftOut.push('.env', '.env.production', 'tests/lockfile.test.ts', 'apps/producer/test/api.unit.test.ts', 'infra/upstream-sim/test/simulator.int.test.ts');
    leftOut.push('infra/k8s/base/kustomization.yaml', 'infra/Dockerfile', '.git/HEAD', 'README.md', 'docker-compose.yml');
    for (const file of leftOut) expect([file, context.ignores(file)]).toEqual([file, true]);
    const kept = [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'infra/upstream-sim/package.json',
      'infra/upstream-sim/src/main.ts',
      'apps/producer/src/main.ts',
    ];
    for (const file of kept) expect([file, context.files.has(file)]).toEqual([file, true]);
    const unwanted = [...context.files].filter((file) => /(^|\/)(node_modules|dist|tests?|\.git)\/|\.tsbuildinfo$|(^|\/)\.env/.test(file));
    expect(unwanted).toEqual([]);
    expect([...context.files].filter((file) => file.startsWith('infra/') && !file.startsWith('infra/upstream-sim/'))).toEqual(['infra/ffmpeg/build.sh']);
  });
});

describe('infra/Dockerfile, stage by stage', () => {
  it('has a Node 24 base, a build, a production-dependency, an ffmpeg and a runtime stage, every COPY source found', () => {
    expect([...stages.keys()]).toEqual(['base', 'build', 'deps', 'ffmpeg', 'runtime']);
    expect(stage('base').from).toMatch(/^node:24[-.]/);
    expect(runtime.from).toBe(stage('base').from);
    expect(stage('ffmpeg').from).toBe(stage('base').from);
  });

  it("ships clipline's ffmpeg build (infra/ffmpeg/build.sh) on PATH, with the packages of the libraries it loads and no packaged ffmpeg", () => {
    const ffmpeg = stage('ffmpeg');
    const [build] = ffmpeg.runs;
    const script = /\bbash (\S+) (\S+)/.exec(build?.command ?? '');
    expect(script && ffmpeg.files.get(script[1]!)).toEqual({ origin: 'context', source: 'infra/ffmpeg/build.sh' });
    const prefix = script![2]!;
    const copied = runtime.copies.filter((copy) => copy.from === 'ffmpeg').flatMap((copy) => copy.sources);
    expect(copied).toEqual([`${prefix}/runtime-packages`, `${prefix}/bin/ffmpeg`, `${prefix}/bin/ffprobe`]);
    for (const file of ['/usr/local/bin/ffmpeg', '/usr/local/bin/ffprobe', '/tmp/ffmpeg-runtime-packages'])
      expect([file, existsIn(runtime, file)]).toEqual([file, true]);
    const installs = runtime.runs.filter((run) => /\bapt-get install\b/.test(run.command));
    expect(installs.map((run) => run.command).join(' ')).toContain('$(cat /tmp/ffmpeg-runtime-packages)');
    expect(installs.filter((run) => /\binstall\b[^&]*\bffmpeg\b(?![-/])/.test(run.command))).toEqual([]);
  });

  it('runs npm ci with the lock and every workspace manifest, and nothing else of the tree yet (cached across source edits)', () => {
    const installs = runsMatching(/\bnpm ci\b/);
    expect(installs.map(({ stage: each }) => each.name)).toEqual(['build', 'deps']);
    const manifests = ['package.json', 'package-lock.json', ...workspaces().map((dir) => `${dir}/package.json`)].map((file) => `/app/${file}`);
    for (const { run } of installs) {
      expect(manifests.filter((file) => !run.files.has(file))).toEqual([]);
      expect([...run.files].filter((file) => !manifests.includes(file))).toEqual([]);
    }
  });

  it('runs tsc -b with every referenced project: its tsconfig, the config it extends and all its sources', () => {
    const [build] = runsMatching(/\bnpm run build\b/);
    expect(build?.stage.name).toBe('build');
    expect(readJson<{ scripts: Record<string, string> }>('package.json').scripts.build).toBe('tsc -b');
    const needed = tsProjects().flatMap((project) => {
      const sources = [...context.files].filter((file) => project.include.some((dir) => file.startsWith(`${dir}/`)));
      return [path.posix.join(project.dir, 'tsconfig.json'), ...(project.extends ? [project.extends] : []), ...sources];
    });
    expect(needed.length).toBeGreaterThan(100);
    expect(needed.filter((file) => !build!.run.files.has(`/app/${file}`))).toEqual([]);
  });

  it('puts the compiled code of every process into the runtime image, which runs as a numeric non-root user under tini', () => {
    const scripts = ['apps/producer', 'apps/worker-io', 'apps/worker-cpu', 'apps/dashboard', 'infra/upstream-sim'].map((dir) => `${dir}/dist/main.js`);
    scripts.push('packages/shared/dist/db/migrate-cli.js', nodeScript(runtime.cmd ?? [])!);
    for (const script of scripts) {
      expect([script, existsIn(runtime, `/app/${script}`), existsIn(stage('build'), `/app/${sourceOf(script)}`)]).toEqual([script, true, true]);
    }
    expect(runtime.user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(runtime.entrypoint).toEqual(['/usr/bin/tini', '--']);
    expect(runtime.env.NODE_ENV).toBe('production');
    expect(runtime.env.STORAGE_DIR).toMatch(/^\/var\/lib\//);
    expect(existsIn(runtime, '/app/node_modules')).toBe(true);
  });
});

describe('the production install of the runtime stage', () => {
  // `npm ci --omit=dev` installs the workspaces' dependencies, hoisted to /app/node_modules, and
  // drops what only the root's devDependencies bring: every package the shipped sources import
  // must be in the lock as a production package.
  it('keeps in the production install every package the shipped code imports', () => {
    const lock = readJson<{ packages: Record<string, { dev?: boolean }> }>('package-lock.json');
    const shipped = tsProjects().filter((project) => project.outDir && existsIn(runtime, `/app/${project.outDir}`));
    expect(shipped.map((project) => project.dir).sort()).toEqual([
      'apps/dashboard',
      'apps/producer',
      'apps/worker-cpu',
      'apps/worker-io',
      'infra/upstream-sim',
      'packages/shared',
    ]);
    const problems: string[] = [];
    for (const project of shipped) {
      const manifest = readJson<Manifest>(`${project.dir}/package.json`);
      for (const name of importedPackages(project.include)) {
        if (name === manifest.name || manifest.dependencies?.[name] || name.startsWith('@clipline/')) continue;
        const installed = lock.packages[`node_modules/${name}`];
        if (!installed || installed.dev)
          problems.push(`${project.dir} imports ${name}, which the production install ${installed ? 'drops (dev only)' : 'lacks'}`);
      }
    }
    expect(problems).toEqual([]);
  });

  // A package both in the root's devDependencies and an optional peer of a production package is
  // `devOptional` in the lock, and `npm ci --omit=dev` keeps it: the deps stage removes it.
  it('removes what npm keeps of the dev tree: packages both dev and an optional peer of a production one', () => {
    const lock = readJson<{ packages: Record<string, { devOptional?: boolean }> }>('package-lock.json');
    const kept = Object.entries(lock.packages)
      .filter(([key, entry]) => entry.devOptional && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(key))
      .map(([key]) => key.slice('node_modules/'.length));
    const [install] = runsMatching(/\bnpm ci --omit=dev\b/);
    expect(install?.stage.name).toBe('deps');
    expect(kept.filter((name) => !new RegExp(`rm -rf .*node_modules/${name}(\\s|$)`).test(install!.run.command))).toEqual([]);
  });
});

/** Packages the non-test sources under `dirs` import at run time (type-only imports left out). */
function importedPackages(dirs: string[]): Set<string> {
  const names = new Set<string>();
  const files = [...context.files].filter((file) => dirs.some((dir) => file.startsWith(`${dir}/`)) && /\.ts$/.test(file));
  for (const file of files) {
    const text = readText(file);
    for (const match of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?'([^'.][^']*)'|import\('([^'.][^']*)'\)/gm)) {
      const specifier = match[1] ?? match[2]!;
      if (specifier.startsWith('node:')) continue;
      names.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
    }
  }
  return names;
}

describe('docker-compose.yml', () => {
  interface ComposeService {
    image?: string;
    build?: { context: string; dockerfile: string };
    command?: string[];
    volumes?: string[];
    environment?: Record<string, string>;
    healthcheck?: { test: string[] };
    depends_on?: Record<string, { condition: string }>;
  }
  const compose = parseYaml(readText('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };

  it('builds infra/Dockerfile from the root and starts only scripts the image holds', () => {
    const built = Object.entries(compose.services).filter(([, service]) => service.build);
    expect(built.length).toBeGreaterThanOrEqual(5);
    for (const [name, service] of built) {
      expect([name, service.build]).toEqual([name, { context: '.', dockerfile: 'infra/Dockerfile' }]);
      const script = nodeScript(service.command ?? runtime.cmd ?? []);
      expect([name, script && existsIn(runtime, `/app/${script}`)]).toEqual([name, true]);
    }
    const mounted = Object.values(compose.services).flatMap((service) => (service.volumes ?? []).filter((volume) => volume.startsWith('./')));
    expect(mounted.filter((volume) => !existsSync(path.join(ROOT, volume.split(':')[0]!)))).toEqual([]);
  });

  it('starts every process that opens the database after the migration, the dashboard included (it writes the audit)', () => {
    const processes = Object.entries(compose.services).filter(([name, service]) => service.build && name !== 'migrate');
    expect(processes.map(([name]) => name)).toContain('dashboard');
    for (const [name, service] of processes) {
      expect([name, service.depends_on?.migrate?.condition]).toEqual([name, 'service_completed_successfully']);
    }
  });

  it('gives the processes only variables the configuration knows, and probes endpoints the apps serve', () => {
    const documented = new Set(readmeVariables(readText('README.md')));
    const clipline = Object.entries(compose.services).filter(([, service]) => service.build);
    for (const [name, service] of clipline) {
      const unknown = Object.keys(service.environment ?? {}).filter((variable) => !documented.has(variable));
      expect([name, unknown]).toEqual([name, []]);
      // Only the one-shot migration has no healthcheck (its exit status is what others wait for).
      if (!service.healthcheck) {
        expect(name).toBe('migrate');
        continue;
      }
      // `fetch('http://127.0.0.1:<port>/<path>')` in the healthcheck: the app's port and a route it has.
      const probe = /http:\/\/127\.0\.0\.1:(\d+)(\/[a-z]+)/.exec((service.healthcheck?.test ?? []).join(' '));
      expect([name, Boolean(probe)]).toEqual([name, true]);
      const [, port, route] = probe!;
      const app = nodeScript(service.command ?? [])!.split('/')[1]!;
      const ports: Record<string, string> = { producer: '3000', 'worker-io': '9464', 'worker-cpu': '9465', dashboard: '3001' };
      expect([name, port]).toEqual([name, ports[app]]);
      const served = sourcesMatch(app.startsWith('worker') ? 'packages/shared/src' : `apps/${app}/src`, new RegExp(`'${route}'`));
      expect([name, route, served]).toEqual([name, route, true]);
    }
  });

  const composeCommand = ['docker-compose', 'docker'].find((binary) => {
    try {
      execFileSync(binary, binary === 'docker' ? ['compose', 'version'] : ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  // Debian's docker-compose (apt-get install docker-compose) or the Compose v2 plugin.
  (composeCommand ? it : it.skip)(`validates with ${composeCommand ?? 'docker-compose (not installed here)'} config`, () => {
    // The observability profile's services too.
    const args = composeCommand === 'docker' ? ['compose', '--profile', 'observability', 'config', '-q'] : ['--profile', 'observability', 'config', '-q'];
    const secrets = { POSTGRES_PASSWORD: 'p', API_KEYS: 'k', DASHBOARD_PASSWORD: 'd', ACCOUNTS_KEYRING: 'main:a' };
    expect(() => execFileSync(composeCommand!, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...secrets }, stdio: 'pipe' })).not.toThrow();
  });
});
