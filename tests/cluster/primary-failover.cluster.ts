/**
 * Failover drill on a real Redis Cluster (`npm run test:cluster`): while videos are being
 * analysed and users registered, the primary holding the deployment's slot (every key carries
 * the prefix's hash tag) is SIGKILLed. Its replica must be promoted by the cluster itself (after
 * cluster-node-timeout) and the real producer and workers must carry on: submissions made during
 * the outage are retried by the client until accepted (videos with an Idempotency-Key, so a retry
 * never makes a second one), every video and user completes with each effect stored exactly once
 * (rows, files, webhooks), no process exits, and every key of the deployment sits in one slot.
 * The killed node then comes back from its AOF and rejoins as a replica of its successor.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jest } from '@jest/globals';
import { Queue } from 'bullmq';
import { DEV_API_KEY, hashTagOf, parseClusterUrl, VIDEO_FLOW, VIDEO_FLOW_PARENT, videoJobId, WEBHOOK_ID_HEADER } from '@clipline/shared';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { ClipLineProcesses } from '../chaos/support/clipline-processes.js';
import { expectExactlyOnceEffects } from '../chaos/support/stored-outcome.js';
import { createTeardown } from '../chaos/support/teardown.js';
import { generateBatch, submissionOf, waitForAnalysis } from '../chaos/support/video-batch.js';
import { FlakyWebhookReceiver } from '../chaos/support/webhook-receiver.js';
import { connectRedis, createTestEnvironment, REDIS_URL, waitFor, type TestEnvironment } from '../helpers/services.js';
import { LocalCluster } from './support/local-cluster.js';

jest.setTimeout(420_000);

const CLUSTER_DIR = process.env.CLIPLINE_TEST_CLUSTER_DIR;
const VIDEOS_BEFORE = 4;
const VIDEOS_DURING = 2;
const USERS_BEFORE = 1;
const USERS_DURING = 1;

const teardown = createTeardown('cluster-primary-failover');
let cluster: LocalCluster;
let env: TestEnvironment;
let simulator: UpstreamSimulator;
let receiver: FlakyWebhookReceiver;
let processes: ClipLineProcesses;

beforeAll(async () => {
  const target = parseClusterUrl(REDIS_URL);
  if (!target || !CLUSTER_DIR) {
    throw new Error('run this drill through `npm run test:cluster`: TEST_REDIS_URL must name the cluster and CLIPLINE_TEST_CLUSTER_DIR its nodes');
  }
  cluster = new LocalCluster(
    target.nodes.map((node) => node.port),
    CLUSTER_DIR,
  );
  env = await createTestEnvironment({ LOG_LEVEL: 'info' });
  teardown.register('test environment', () => env.cleanup());
  simulator = await createUpstreamSimulator({ seed: 17 });
  teardown.register('upstream simulator', () => simulator.close());
  receiver = await FlakyWebhookReceiver.start([]);
  teardown.register('webhook receiver', () => receiver.close());
  processes = await ClipLineProcesses.create({ ...env.env, CPU_POOL_THREADS: '2', UPSTREAM_SIM_URL: simulator.url });
  teardown.register('clipline processes', () => processes.killAll());
  await Promise.all((['producer', 'worker-io', 'worker-cpu'] as const).map((app) => processes.start(app)));
});

afterAll(async () => {
  expect(await teardown.shutdown('tests finished')).toBe(0);
});

interface Answer {
  status: number;
  body: Record<string, any>;
}

/** One POST with the dev key; no answer at all (refused, timed out) is status 0. */
async function post(route: string, body: object, headers: Record<string, string> = {}): Promise<Answer> {
  try {
    const res = await fetch(`${processes.producerUrl}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> };
  } catch (error) {
    return { status: 0, body: { error: String(error) } };
  }
}

/**
 * Repeats `attempt` as a careful client does until it yields an id; `attempt` answers undefined
 * for an answer worth retrying (503, 409 while its own earlier try still runs, no answer). A
 * time-out names the last answers and what the processes printed last.
 */
async function untilAccepted(what: string, refusals: number[], attempt: (answers: Answer[]) => Promise<string | undefined>): Promise<string> {
  const answers: Answer[] = [];
  try {
    return await waitFor(
      async () => {
        const id = await attempt(answers);
        if (id !== undefined) return id;
        refusals.push(answers.at(-1)?.status ?? -1);
        await new Promise((resolve) => setTimeout(resolve, 200));
        return undefined;
      },
      60_000,
      what,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last answers: ${JSON.stringify(answers.slice(-3))}\n${processes.logs(15)}`);
  }
}

/** Submits a video with an Idempotency-Key, the same on every retry, so a retry never makes a second one. */
async function submitVideo(submission: object, refusals: number[]): Promise<string> {
  const key = randomUUID();
  return untilAccepted('a video submission to be accepted', refusals, async (answers) => {
    const answer = await post('/v1/videos', submission, { 'idempotency-key': key });
    answers.push(answer);
    if (answer.status === 202) return answer.body.id as string;
    if (![0, 409, 503].includes(answer.status)) throw new Error(`POST /v1/videos answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return undefined;
  });
}

/** Registers a user, retrying 503 and no answer; a 409 after an unanswered attempt means that attempt got through. */
async function registerUser(email: string, refusals: number[]): Promise<string> {
  return untilAccepted(`the registration of ${email} to be accepted`, refusals, async (answers) => {
    const answer = await post('/v1/users', { email, password: `Cluster failover ${email} correct horse battery staple`, name: 'Failover Drill' });
    const unansweredBefore = answers.some((earlier) => earlier.status === 0);
    answers.push(answer);
    if (answer.status === 202) return answer.body.id as string;
    if (answer.status === 409 && unansweredBefore) {
      const row = await env.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst();
      if (row) return row.id;
    }
    if (![0, 503].includes(answer.status)) throw new Error(`POST /v1/users answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return undefined;
  });
}

/**
 * Where a video's flow stands in the queues, for a failure message: each job's state and
 * attempts, and the warnings and errors the processes logged about the video.
 */
async function flowReport(videoId: string): Promise<string> {
  const redis = connectRedis(env.config.redisUrl);
  const lines: string[] = [];
  try {
    const steps = [
      ...VIDEO_FLOW.map((step) => ({
        queue: step.queue.name,
        ids: step.fanOut ? [0, 1, 2].map((index) => videoJobId(videoId, step.name, index)) : [videoJobId(videoId, step.name)],
      })),
      { queue: VIDEO_FLOW_PARENT.queue.name, ids: [videoJobId(videoId, VIDEO_FLOW_PARENT.step)] },
    ];
    for (const { queue: name, ids } of steps) {
      const queue = new Queue(name, { connection: redis, prefix: env.config.queuePrefix });
      for (const id of ids) {
        const job = await queue.getJob(id);
        if (job) lines.push(`${name}/${id}: ${await job.getState()}, ${job.attemptsMade} attempt(s)${job.failedReason ? `, ${job.failedReason}` : ''}`);
      }
      await queue.close();
    }
  } finally {
    redis.disconnect();
  }
  for (const app of ['producer', 'worker-io', 'worker-cpu']) {
    const logged = processes
      .instance(app)
      .output()
      .split('\n')
      .filter((line) => /"level":(40|50|60)/.test(line) && (line.includes(videoId) || line.includes('"msg":"worker error"')));
    lines.push(...logged.slice(-8).map((line) => `${app}: ${line.slice(0, 500)}`));
  }
  return lines.join('\n');
}

async function settleVideo(client: ClipLineProcesses, id: string): Promise<string> {
  return waitFor(
    async () => {
      const video = (await client.api('GET', `/v1/videos/${id}`)).body;
      if (!['completed', 'failed', 'cancelled'].includes(video.status)) return undefined;
      // A video that did not complete says why, with the state of each of its steps.
      const steps = (video.steps as { name: string; status: string }[]).map((step) => `${step.name}:${step.status}`).join(' ');
      return video.status === 'completed' ? 'completed' : `${video.status}: ${video.error} (${steps})`;
    },
    180_000,
    `video ${id} to settle`,
  ).catch(async (error: Error) => `${error.message}\n${await flowReport(id).catch((reportError: Error) => reportError.message)}`);
}

/** The processes' output, kept in test-results/ when the drill fails (the cluster's folder is removed). */
async function keepLogs(): Promise<void> {
  const dir = path.resolve(import.meta.dirname, '../../test-results/cluster-failover');
  await mkdir(dir, { recursive: true });
  for (const app of ['producer', 'worker-io', 'worker-cpu']) await writeFile(path.join(dir, `${app}.log`), processes.instance(app).output());
}

it('loses nothing when the primary holding the queues dies: the replica takes over and every video and user completes exactly once', async () => {
  const started = Date.now();
  const media = await generateBatch(env.config.storageDir, VIDEOS_BEFORE + VIDEOS_DURING);
  const callbackUrl = (index: number) => `${receiver.baseUrl}/hooks/video-${index}`;
  const submission = (index: number) => ({ ...submissionOf(media[index]!), callbackUrl: callbackUrl(index) });
  const refusalsBefore: number[] = [];
  const refusals: number[] = [];
  const emails = Array.from({ length: USERS_BEFORE + USERS_DURING }, (_, index) => `failover-${index}-${randomUUID().slice(0, 8)}@example.com`);

  const videoIds: string[] = [];
  for (let index = 0; index < VIDEOS_BEFORE; index++) videoIds.push(await submitVideo(submission(index), refusalsBefore));
  const userIds: string[] = [];
  for (const email of emails.slice(0, USERS_BEFORE)) userIds.push(await registerUser(email, refusalsBefore));
  // With every primary up nothing is refused (a busy machine may still leave a request unanswered).
  expect(refusalsBefore.filter((status) => status !== 0)).toEqual([]);
  // Work under way when the primary dies: a video in analysis, or one already past it.
  await waitForAnalysis(processes, videoIds, { orDone: true });

  // The primary serving the deployment's slot, and the replica that should take its place.
  const slot = await cluster.slotOf(env.config.queuePrefix);
  const primary = await cluster.primaryOf(slot);
  const replicas = await cluster.replicasOf(primary);
  expect(replicas.length).toBeGreaterThanOrEqual(1);
  const killedPid = await cluster.kill(primary.port);
  const killedAt = Date.now();

  // Submissions while the slot has no primary: refused (503) or slow, never lost or doubled.
  const acceptedAfterMs: number[] = [];
  const timed = async (accepted: Promise<string>) => {
    const id = await accepted;
    acceptedAfterMs.push(Date.now() - killedAt);
    return id;
  };
  const during = Promise.all([
    ...Array.from({ length: VIDEOS_DURING }, (_, offset) => timed(submitVideo(submission(VIDEOS_BEFORE + offset), refusals))),
    ...emails.slice(USERS_BEFORE).map((email) => timed(registerUser(email, refusals))),
  ]);
  const promotedPort = await cluster.waitForPromotion(
    replicas.map((replica) => replica.port),
    30_000,
  );
  const promotedAt = Date.now();
  const survivors = cluster.ports.filter((port) => port !== primary.port);
  await cluster.waitForStateOk(survivors, 30_000);
  const clusterOkAt = Date.now();
  const accepted = await during;
  videoIds.push(...(accepted.slice(0, VIDEOS_DURING) as string[]));
  userIds.push(...(accepted.slice(VIDEOS_DURING) as string[]));

  // The old primary comes back from its AOF as a replica of the node that replaced it.
  await cluster.restart(primary.port);
  await cluster.waitForReplica(primary.port, promotedPort, 30_000);

  const statuses = await Promise.all(videoIds.map((id) => settleVideo(processes, id)));
  if (statuses.some((status) => status !== 'completed')) await keepLogs();
  expect(statuses).toEqual(videoIds.map(() => 'completed'));
  for (const [index, id] of videoIds.entries()) await expectExactlyOnceEffects(env.db, id, media[index]!.cutSeconds);
  // One row per accepted submission: no retry during the outage made a second video.
  const videoRows = await env.db.selectFrom('videos').select('id').execute();
  expect(videoRows.map((row) => row.id).sort()).toEqual([...videoIds].sort());

  const users = await waitFor(
    async () => {
      const rows = await env.db.selectFrom('users').select(['id', 'email', 'status', 'welcomed_at']).execute();
      return rows.length === emails.length && rows.every((row) => row.status === 'active' && row.welcomed_at !== null) ? rows : undefined;
    },
    120_000,
    'every user to be active and welcomed',
  );
  expect(users.map((row) => row.email).sort()).toEqual([...emails].sort());
  expect(users.map((row) => row.id).sort()).toEqual([...userIds].sort());

  // Each video's completion reached its submitter once (receivers deduplicate on webhook-id).
  const webhookIds = await waitFor(
    async () => {
      const byVideo = videoIds.map(
        (_, index) => new Set(receiver.received.filter((hook) => hook.path === `/hooks/video-${index}`).map((hook) => hook.headers[WEBHOOK_ID_HEADER])),
      );
      return byVideo.every((ids) => ids.size >= 1) ? byVideo.map((ids) => ids.size) : undefined;
    },
    60_000,
    'a webhook for every video',
  );
  expect(webhookIds).toEqual(videoIds.map(() => 1));

  // Every key the deployment wrote carries the prefix's hash tag, so all of them live on the promoted primary.
  const token = hashTagOf(env.config.queuePrefix)!;
  const primaries = (await cluster.nodes()).filter((node) => node.role === 'primary' && !node.flags.includes('fail'));
  const keysByNode = await Promise.all(primaries.map(async ({ port }) => ({ port, keys: await cluster.keysOn(port, `*${token}*`) })));
  const keys = keysByNode.flatMap((node) => node.keys);
  expect(keys.length).toBeGreaterThan(0);
  expect(keys.filter((key) => hashTagOf(key) !== token)).toEqual([]);
  expect(keysByNode.filter((node) => node.keys.length > 0).map((node) => node.port)).toEqual([promotedPort]);
  expect(processes.exited()).toEqual([]);

  const summary = {
    slot,
    killedPrimary: { port: primary.port, pid: killedPid },
    promotedReplica: promotedPort,
    failoverMs: promotedAt - killedAt,
    clusterOkMs: clusterOkAt - killedAt,
    videosCompleted: statuses.length,
    usersActivated: users.length,
    webhooksDelivered: receiver.received.length,
    /** When each submission made during the outage was accepted, counted from the kill. */
    acceptedAfterMs: acceptedAfterMs.sort((x, y) => x - y),
    refusedAnswers: {
      '503': refusals.filter((status) => status === 503).length,
      '409': refusals.filter((status) => status === 409).length,
      none: refusals.filter((status) => status === 0).length,
    },
    keysInOneSlot: keys.length,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  await writeFile(path.join(CLUSTER_DIR!, 'failover-summary.json'), JSON.stringify(summary));
});
