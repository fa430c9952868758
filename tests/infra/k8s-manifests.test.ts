/**
 * infra/k8s, rendered (base, dev and prod) and checked offline: every object against the
 * Kubernetes and KEDA schemas, unknown fields included; then what running clipline needs of
 * them: probes on the paths and ports each process really serves, grace periods longer than the
 * drain deadline, requests and limits, non-root pods on read-only root filesystems writing only
 * to volumes, disruption budgets, the migration Job, every README variable wired into the
 * processes, and only scripts the image holds. Autoscaling: k8s-autoscaling.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { idOf, type K8sObject } from './support/kustomize.js';
import { schemaErrors, unknownFieldErrors } from './support/k8s-schemas.js';
import { runtimeImage } from './support/image.js';
import { existsIn } from './support/dockerfile.js';
import {
  type Container,
  cliplineWorkloads,
  configData,
  type EnvEntry,
  find,
  isCliplineImage,
  ofKind,
  quantity,
  RENDERS,
  type RenderName,
  rendered,
  resolveEnv,
  variablesOf,
  workloads,
} from './support/manifests.js';
import { readmeVariables } from './support/readme-variables.js';
import { nodeScript, readText, sourcesMatch } from './support/workspace.js';
import { loadConfig } from '../../packages/shared/src/config.js';
import { loadSimSettings } from '../../infra/upstream-sim/src/sim-config.js';

describe('the schemas', () => {
  it('accept every object of base, dev and prod, with no field the API does not know', async () => {
    const objects = new Map(RENDERS.flatMap((render) => rendered(render).map((object) => [`${render} ${idOf(object)}`, object] as const)));
    expect(objects.size).toBeGreaterThan(60);
    const errors: string[] = [];
    // One at a time: jest's module registry does not take concurrent first imports of one module.
    for (const object of objects.values()) errors.push(...(await schemaErrors(object)));
    expect(errors).toEqual([]);
    expect(unknownFieldErrors([...objects.values()])).toEqual([]);
  }, 60_000);

  it('refuse broken objects: a wrong type, a missing required field, a misspelt field', async () => {
    const producer = find(rendered('prod'), 'Deployment', 'producer');
    const scaled = find(rendered('prod'), 'ScaledObject', 'worker-cpu');
    expect(await schemaErrors({ ...producer, spec: { ...(producer.spec as object), replicas: 'three' } } as K8sObject)).toEqual([
      expect.stringMatching(/^Deployment\/clipline\/producer \/spec\/replicas: must be integer/),
    ]);
    const untyped = structuredClone(scaled) as any;
    delete untyped.spec.triggers[0].type;
    expect((await schemaErrors(untyped)).join('\n')).toMatch(/\/spec\/triggers\/0: must have required property '?type'?/);
    const misspelt = structuredClone(producer) as any;
    misspelt.spec.template.spec.containers[0].livenesProbe = misspelt.spec.template.spec.containers[0].livenessProbe;
    const misplaced = structuredClone(scaled) as any;
    misplaced.spec.minReplicas = 1;
    const errors = unknownFieldErrors([misspelt, misplaced]);
    expect(errors).toEqual([
      expect.stringMatching(/^Deployment\/clipline\/producer: TS\d+: .*"livenesProbe"' does not exist in type 'IContainer'/),
      expect.stringMatching(/^ScaledObject\/clipline\/worker-cpu: TS\d+: .*"minReplicas"' does not exist in type 'IScaledObjectSpec'/),
    ]);
  }, 60_000);
});

describe('the README variable tables', () => {
  it('are read with their notations: several names a row, _SUFFIX siblings, *_FAMILY per named provider', () => {
    const table = [
      '| variable | default | meaning |',
      '|---|---|---|',
      "| `PORT` / `HOST` | `3000` | the listener; `HOST` is every listener's |",
      '| `BREAKER_VOLUME_THRESHOLD` / `_ERROR_PERCENT` | 5 / 50 | a breaker |',
      '| `OPENAI_API_KEY`, `YOUTUBE_API_KEY` | none | keys; `*_BASE_URL` per provider, see `WEBHOOK_TIMEOUT_SECONDS` |',
      '',
      '| name | value |',
      '|---|---|',
      '| `NOT_A_VARIABLE` | x |',
    ].join('\n');
    expect(readmeVariables(table).sort()).toEqual(
      [
        'PORT',
        'HOST',
        'BREAKER_VOLUME_THRESHOLD',
        'BREAKER_ERROR_PERCENT',
        'OPENAI_API_KEY',
        'YOUTUBE_API_KEY',
        'OPENAI_BASE_URL',
        'YOUTUBE_BASE_URL',
        'WEBHOOK_TIMEOUT_SECONDS',
      ].sort(),
    );
  });
});

/**
 * What each clipline process serves: probe path per probe, the variable holding the port, and a
 * pattern its sources (the app's, and the shared package for the metrics listener) must match.
 */
const SERVED: Record<string, { liveness: string; readiness: string; portVariable: string; source: [string, RegExp][] }> = {
  producer: {
    liveness: '/healthz',
    readiness: '/readyz',
    portVariable: 'PORT',
    source: [
      ['apps/producer/src', /\.get\('\/healthz'/],
      ['apps/producer/src', /\.get\('\/readyz'/],
    ],
  },
  'worker-io': {
    liveness: '/healthz',
    readiness: '/healthz',
    portVariable: 'WORKER_IO_METRICS_PORT',
    source: [
      ['apps/worker-io/src', /startMetricsServer\([^)]*config\.workerIoMetricsPort/],
      ['packages/shared/src', /req\.url === '\/healthz'/],
    ],
  },
  'worker-cpu': {
    liveness: '/healthz',
    readiness: '/healthz',
    portVariable: 'WORKER_CPU_METRICS_PORT',
    source: [
      ['apps/worker-cpu/src', /startMetricsServer\([^)]*config\.workerCpuMetricsPort/],
      ['packages/shared/src', /req\.url === '\/healthz'/],
    ],
  },
  dashboard: {
    liveness: '/healthz',
    readiness: '/healthz',
    portVariable: 'DASHBOARD_PORT',
    source: [['apps/dashboard/src', /\.get\('\/healthz'/]],
  },
};

interface Probe {
  httpGet?: { path: string; port: string | number };
}

/** The container port a probe's port (a number or a port name) stands for. */
function probePort(container: Container, probe: Probe): number | undefined {
  const port = probe.httpGet?.port;
  if (typeof port === 'number') return port;
  return ((container.ports as { name?: string; containerPort: number }[] | undefined) ?? []).find((candidate) => candidate.name === port)?.containerPort;
}

function appContainer(objects: K8sObject[], app: string): Container {
  const workload = workloads(objects).find((candidate) => candidate.object.kind === 'Deployment' && candidate.object.metadata.name === app);
  const container = workload?.containers.find((candidate) => candidate.name === app);
  if (!container) throw new Error(`no Deployment ${app} with a container ${app}`);
  return container;
}

const renders: { render: RenderName }[] = RENDERS.map((render) => ({ render }));

describe.each(renders)('the $render manifests', ({ render }) => {
  const objects = rendered(render);
  const config = configData(objects);

  it('probe every clipline process for liveness and readiness on the path and port it serves', () => {
    for (const [app, served] of Object.entries(SERVED)) {
      const container = appContainer(objects, app);
      const probes = { startup: container.startupProbe, liveness: container.livenessProbe, readiness: container.readinessProbe } as Record<string, Probe>;
      const port = Number(config[served.portVariable]);
      expect([
        app,
        probes.liveness?.httpGet?.path,
        probePort(container, probes.liveness!),
        probes.readiness?.httpGet?.path,
        probePort(container, probes.readiness!),
      ]).toEqual([app, served.liveness, port, served.readiness, port]);
      if (probes.startup) expect([app, probes.startup.httpGet?.path, probePort(container, probes.startup)]).toEqual([app, served.liveness, port]);
      for (const [dir, pattern] of served.source) expect([dir, String(pattern), sourcesMatch(dir, pattern)]).toEqual([dir, String(pattern), true]);
    }
  });

  it('give every pod a grace period longer than SHUTDOWN_TIMEOUT_SECONDS plus its preStop pause', () => {
    const deadline = Number(config.SHUTDOWN_TIMEOUT_SECONDS);
    expect(deadline).toBeGreaterThan(0);
    for (const { object, pod, containers } of cliplineWorkloads(objects).filter(({ object }) => SERVED[object.metadata.name] && object.kind === 'Deployment')) {
      const pause = Math.max(0, ...containers.map((container) => (container.lifecycle as any)?.preStop?.sleep?.seconds ?? 0));
      // The drain itself, then closing the pool, the database and Redis: at least 5 s more.
      expect([idOf(object), (pod.terminationGracePeriodSeconds as number) >= deadline + pause + 5]).toEqual([idOf(object), true]);
    }
  });

  it('cap every Redis below its memory limit, refusing writes rather than evicting: the kernel does not kill it at the limit, and the memory alert can fire', () => {
    for (const { object, containers } of workloads(objects)) {
      for (const container of containers.filter((each) => String(each.image ?? '').startsWith('redis:'))) {
        const args = (container.args ?? []) as string[];
        const setting = (name: string) => args[args.indexOf(`--${name}`) + 1];
        const limit = (container.resources as { limits: Record<string, string> }).limits.memory!;
        const where = `${idOf(object)} ${container.name}`;
        expect([where, setting('maxmemory-policy')]).toEqual([where, 'noeviction']);
        // Headroom for the AOF rewrite's copy-on-write child and the clients' buffers.
        const cap = args.includes('--maxmemory') ? quantity(setting('maxmemory')!.replace(/mb$/, 'Mi')) : 0;
        expect([where, cap > 0 && cap <= quantity(limit) * 0.8]).toEqual([where, true]);
      }
    }
  });

  it('set CPU and memory requests and limits on every container, within the limits', () => {
    for (const { object, containers } of workloads(objects)) {
      for (const container of containers) {
        const { requests = {}, limits = {} } = (container.resources ?? {}) as Record<string, Record<string, string>>;
        for (const resource of ['cpu', 'memory']) {
          const where = `${idOf(object)} ${container.name} ${resource}`;
          expect([where, requests[resource] !== undefined && limits[resource] !== undefined]).toEqual([where, true]);
          expect([where, quantity(requests[resource]!) <= quantity(limits[resource]!)]).toEqual([where, true]);
        }
      }
    }
  });
});

/**
 * Whether a pod runs as a ServiceAccount of the manifests bound, by RoleBindings of its namespace
 * only, to Roles that get, list and watch, and nothing else.
 */
function readsTheApiOnly(objects: K8sObject[], pod: Record<string, unknown>): boolean {
  const account = pod.serviceAccountName as string | undefined;
  if (!account) return false;
  find(objects, 'ServiceAccount', account);
  const grants = (kind: string) =>
    ofKind(objects, kind).filter((binding) =>
      ((binding.subjects ?? []) as { kind: string; name: string }[]).some((subject) => subject.kind === 'ServiceAccount' && subject.name === account),
    );
  if (grants('ClusterRoleBinding').length) return false;
  const roles = grants('RoleBinding').map((binding) => (binding.roleRef as { kind: string; name: string }).name);
  const verbs = roles.flatMap((name) => ((find(objects, 'Role', name).rules ?? []) as { verbs: string[] }[]).flatMap((rule) => rule.verbs));
  return roles.length > 0 && verbs.every((verb) => ['get', 'list', 'watch'].includes(verb));
}

describe.each(renders)('the $render pods', ({ render }) => {
  const objects = rendered(render);
  const config = configData(objects);

  it('run every pod as non-root on a read-only root filesystem, without privileges, service links or (unless it only reads the API) service account token', () => {
    for (const { object, pod, containers } of workloads(objects)) {
      const security = (pod.securityContext ?? {}) as Record<string, any>;
      expect([idOf(object), security.runAsNonRoot, security.runAsUser > 0, security.seccompProfile?.type]).toEqual([
        idOf(object),
        true,
        true,
        'RuntimeDefault',
      ]);
      // A token only for a pod with its own ServiceAccount that may read, and only read (dev's Prometheus discovering pods).
      expect([idOf(object), pod.automountServiceAccountToken, pod.enableServiceLinks]).toEqual([idOf(object), readsTheApiOnly(objects, pod), false]);
      for (const container of containers) {
        const context = (container.securityContext ?? {}) as Record<string, any>;
        expect([idOf(object), container.name, context.readOnlyRootFilesystem, context.allowPrivilegeEscalation, context.capabilities?.drop]).toEqual([
          idOf(object),
          container.name,
          true,
          false,
          ['ALL'],
        ]);
      }
      const volumes = (pod.volumes ?? []) as Record<string, unknown>[];
      expect([idOf(object), volumes.filter((volume) => !volume.emptyDir && !volume.persistentVolumeClaim && !volume.secret && !volume.configMap)]).toEqual([
        idOf(object),
        [],
      ]);
    }
  });

  it('give every clipline process a writable /tmp and the storage volume where STORAGE_DIR says, and nothing else writable', () => {
    const storageUsers = ['producer', 'worker-io', 'worker-cpu'];
    for (const { object, pod, containers } of cliplineWorkloads(objects)) {
      const volumes = new Map(((pod.volumes ?? []) as { name: string }[]).map((volume) => [volume.name, volume as Record<string, any>]));
      for (const container of containers) {
        const mounts = Object.fromEntries(
          ((container.volumeMounts ?? []) as { name: string; mountPath: string }[]).map((mount) => [mount.mountPath, volumes.get(mount.name)]),
        );
        expect([idOf(object), mounts['/tmp']?.emptyDir !== undefined]).toEqual([idOf(object), true]);
        const storage = mounts[config.STORAGE_DIR!]?.persistentVolumeClaim?.claimName;
        expect([idOf(object), storage]).toEqual([idOf(object), storageUsers.includes(object.metadata.name) ? 'clipline-storage' : undefined]);
        expect([idOf(object), Object.keys(mounts).sort()]).toEqual([idOf(object), storage ? [config.STORAGE_DIR, '/tmp'].sort() : ['/tmp']]);
      }
    }
    expect(find(objects, 'PersistentVolumeClaim', 'clipline-storage').spec).toMatchObject({
      accessModes: [render === 'dev' ? 'ReadWriteOnce' : 'ReadWriteMany'],
    });
  });
});

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return Object.keys(selector ?? {}).length > 0 && Object.entries(selector!).every(([key, value]) => labels?.[key] === value);
}

describe.each(renders)('the $render manifests, around the processes', ({ render }) => {
  const objects = rendered(render);
  const podLabels = (object: K8sObject) => (object.spec as any).template.metadata.labels as Record<string, string>;

  it('cover every clipline Deployment with a PodDisruptionBudget, and send every Service to pods and ports that exist', () => {
    const budgets = ofKind(objects, 'PodDisruptionBudget');
    for (const { object } of cliplineWorkloads(objects).filter(({ object }) => object.kind === 'Deployment' && object.metadata.name !== 'upstream-sim')) {
      const covering = budgets.filter((budget) => selects((budget.spec as any).selector.matchLabels, podLabels(object)));
      expect([idOf(object), covering.length]).toEqual([idOf(object), 1]);
      expect([idOf(object), (covering[0]!.spec as any).maxUnavailable]).toEqual([idOf(object), 1]);
    }
    for (const service of ofKind(objects, 'Service')) {
      const spec = service.spec as { selector: Record<string, string>; ports: { targetPort: string | number }[] };
      const targets = workloads(objects).filter(({ object }) => selects(spec.selector, podLabels(object)));
      expect([idOf(service), targets.length]).toEqual([idOf(service), 1]);
      const named = targets[0]!.containers.flatMap((container) =>
        ((container.ports ?? []) as { name: string; containerPort: number }[]).flatMap((port) => [port.name, port.containerPort]),
      );
      for (const port of spec.ports) expect([idOf(service), port.targetPort, named.includes(port.targetPort)]).toEqual([idOf(service), port.targetPort, true]);
    }
  });

  it('run the schema migration as a Job of the apps image, with the same configuration, retried and cleaned up', () => {
    const job = find(objects, 'Job', 'clipline-migrate');
    const [migrate] = workloads([job])[0]!.containers;
    const producer = appContainer(objects, 'producer');
    expect(migrate!.image).toBe(producer.image);
    expect(migrate!.args).toEqual(['node', 'packages/shared/dist/db/migrate-cli.js']);
    // Everything from the ConfigMap and the Secret; what a Deployment sets for itself (its service name) aside.
    const shared = (container: Container) =>
      [...variablesOf(container, objects)].filter(([, origin]) => /^(ConfigMap|Secret) /.test(origin)).map(([name]) => name);
    expect(shared(migrate!).sort()).toEqual(shared(producer).sort());
    const spec = job.spec as Record<string, any>;
    expect(['Never', 'OnFailure']).toContain(spec.template.spec.restartPolicy);
    expect(spec.backoffLimit).toBeGreaterThan(0);
    expect(spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    // The apps refuse to start (exit 78) until the Job has migrated, and restart until then.
    for (const app of ['producer', 'worker-io', 'worker-cpu']) {
      expect([app, sourcesMatch(`apps/${app}/src`, /await requireMigratedDatabase\(/)]).toEqual([app, true]);
      expect((find(objects, 'Deployment', app).spec as any).template.spec.restartPolicy ?? 'Always').toBe('Always');
    }
  });
});

describe.each(renders)('the $render processes', ({ render }) => {
  const objects = rendered(render);
  const config = configData(objects);

  it('start only scripts the image holds, as arguments to its init process', () => {
    const image = runtimeImage();
    for (const { object, containers } of cliplineWorkloads(objects)) {
      for (const container of containers.filter((candidate) => isCliplineImage(candidate.image))) {
        const script = nodeScript((container.args as string[] | undefined) ?? []);
        expect([idOf(object), container.command, script && existsIn(image, `/app/${script}`)]).toEqual([idOf(object), undefined, true]);
      }
    }
  });

  it('wire every variable README documents into the processes, the required secrets into each', () => {
    const production = config.NODE_ENV === 'production';
    expect(production).toBe(render !== 'dev');
    const documented = readmeVariables(readText('README.md'));
    expect(documented.length).toBeGreaterThanOrEqual(80);
    // Each name the parser finds is read somewhere in the code: a guard on the parser itself.
    const read = (name: string) => ['packages/shared/src', 'infra/upstream-sim/src'].some((dir) => sourcesMatch(dir, new RegExp(`\\b${name}\\b`)));
    expect(documented.filter((name) => !read(name))).toEqual([]);
    // The simulator is refused in production: only the dev overlay runs and points at it.
    const expected = documented.filter((name) => !(production && name.startsWith('UPSTREAM_SIM_')));
    const processes = cliplineWorkloads(objects).flatMap(({ containers }) => containers.filter((container) => isCliplineImage(container.image)));
    const given = new Set(processes.flatMap((container) => [...variablesOf(container, objects).keys()]));
    expect(expected.filter((name) => !given.has(name))).toEqual([]);
    if (production) expect([...given].filter((name) => name.startsWith('UPSTREAM_SIM_'))).toEqual([]);
    for (const container of processes.filter((candidate) => candidate.name !== 'upstream-sim')) {
      const env = new Map(((container.env ?? []) as EnvEntry[]).map((entry) => [entry.name, entry.valueFrom?.secretKeyRef]));
      for (const name of ['REDIS_URL', 'DATABASE_URL', 'API_KEYS', 'DASHBOARD_PASSWORD', 'ACCOUNTS_KEYRING']) {
        expect([container.name, name, env.get(name)]).toEqual([container.name, name, { name: 'clipline-secrets', key: name }]);
      }
    }
  });
});

/**
 * The PostgreSQL connections clipline may open at once: every process of each Deployment at its
 * most replicas (its ScaledObject's maximum), plus what a rolling update adds beside them, each
 * with a full pool, and the migration Job's two.
 */
function mostDatabaseConnections(objects: K8sObject[]): number {
  const MIGRATION_POOL = 2;
  let total = MIGRATION_POOL;
  for (const { object, containers } of cliplineWorkloads(objects).filter(({ object }) => object.kind === 'Deployment')) {
    const spec = object.spec as { replicas?: number; strategy?: { rollingUpdate?: { maxSurge?: number | string } } };
    const scaler = ofKind(objects, 'ScaledObject').find(
      (each) => (each.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === object.metadata.name,
    );
    const replicas = scaler ? (scaler.spec as { maxReplicaCount: number }).maxReplicaCount : (spec.replicas ?? 1);
    const surge = spec.strategy?.rollingUpdate?.maxSurge ?? '25%';
    const extra = typeof surge === 'number' ? surge : Math.ceil((replicas * Number.parseFloat(surge)) / 100);
    for (const container of containers.filter((each) => isCliplineImage(each.image))) {
      const env = resolveEnv(container, objects, () => 'stand-in');
      total += (replicas + extra) * Number(env.DATABASE_POOL_SIZE ?? 10);
    }
  }
  return total;
}

describe('PostgreSQL connections', () => {
  // PostgreSQL keeps superuser_reserved_connections (3) of max_connections for administrators.
  it("are within the development cluster's max_connections at the most replicas, during a rollout", () => {
    const objects = rendered('dev');
    const postgres = find(objects, 'Deployment', 'postgres');
    const args = (workloads([postgres])[0]!.containers[0]!.args ?? []) as string[];
    const setting = args.map((arg) => /^max_connections=(\d+)$/.exec(arg)?.[1]).find(Boolean);
    expect(Number(setting ?? 100) - 3).toBeGreaterThanOrEqual(mostDatabaseConnections(objects));
  });

  it('are stated for production, which brings its own PostgreSQL, at no less than they can reach', () => {
    const text = readText('infra/k8s/overlays/prod/kustomization.yaml');
    const stated = /max_connections of at least (\d+)/.exec(text)?.[1];
    expect(Number(stated)).toBeGreaterThanOrEqual(mostDatabaseConnections(rendered('prod')) + 3);
  });
});

describe.each(renders)('the $render configuration', ({ render }) => {
  const objects = rendered(render);

  it('give every process an environment its configuration accepts (production secrets stood in for where the manifests hold none)', () => {
    // What an operator puts in clipline-secrets: production-grade values, required keys only.
    const standIn = (_name: string, key: string) =>
      ({
        REDIS_URL: 'redis://redis.example:6379',
        DATABASE_URL: 'postgres://clipline:secret@postgres.example:5432/clipline',
        ACCOUNTS_KEYRING: `main:${randomBytes(32).toString('base64')}`,
      })[key] ?? (['API_KEYS', 'DASHBOARD_PASSWORD'].includes(key) ? randomBytes(32).toString('hex') : undefined);
    for (const { object, containers } of cliplineWorkloads(objects)) {
      for (const container of containers.filter((candidate) => isCliplineImage(candidate.image))) {
        const env = resolveEnv(container, objects, standIn);
        if (object.metadata.name === 'upstream-sim') {
          expect(loadSimSettings(env).host).toBe('0.0.0.0');
          continue;
        }
        const config = loadConfig(env);
        expect([idOf(object), config.env, config.host, config.storageDir]).toEqual([
          idOf(object),
          render === 'dev' ? 'development' : 'production',
          '0.0.0.0',
          env.STORAGE_DIR,
        ]);
      }
    }
  });

  it('refer only to ConfigMap and Secret keys that exist, unless optional, and keep production secrets out of the manifests', () => {
    const secrets = ofKind(objects, 'Secret');
    if (render !== 'dev') expect(secrets).toEqual([]);
    const references = workloads(objects).flatMap(({ containers }) =>
      containers.flatMap((container) => ((container.env ?? []) as EnvEntry[]).map((entry) => entry.valueFrom)),
    );
    for (const reference of references) {
      const ref = reference?.configMapKeyRef ?? reference?.secretKeyRef;
      if (!ref || ref.optional) continue;
      if (reference?.configMapKeyRef) expect([ref.key, configData(objects, ref.name)[ref.key] !== undefined]).toEqual([ref.key, true]);
      else if (render === 'dev') expect([ref.key, (find(objects, 'Secret', ref.name).stringData as any)?.[ref.key] !== undefined]).toEqual([ref.key, true]);
    }
  });
});
