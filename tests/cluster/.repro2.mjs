import { Queue, Worker } from 'bullmq';
import { createRedis } from '../../packages/shared/dist/index.js';
import { execSync } from 'node:child_process';
const url = process.env.URL;
const prefix = `{repro-${Date.now()}}`;
const conn = createRedis(url, 'worker');
const qconn = createRedis(url, 'producer');
await new Promise((r) => setTimeout(r, 500));
const slot = await conn.cluster('KEYSLOT', prefix);
const nodes = (await conn.cluster('NODES'))
  .trim()
  .split('\n')
  .map((l) => l.split(' '));
const primary = nodes.find(
  (n) =>
    n[2].includes('master') &&
    !n[2].includes('fail') &&
    n.slice(8).some((r) => {
      const [a, b = a] = r.split('-').map(Number);
      return slot >= a && slot <= b;
    }),
);
const port = Number(primary[1].split('@')[0].split(':')[1]);
const names = ['a', 'b', 'c', 'd', 'e', 'f'];
const queues = names.map((n) => new Queue(n, { connection: qconn, prefix }));
const done = new Map(names.map((n) => [n, []]));
const workers = names.map((n) => {
  const w = new Worker(
    n,
    async (job) => {
      await new Promise((r) => setTimeout(r, 300));
      done.get(n).push(job.id);
      return 1;
    },
    { connection: conn, prefix, concurrency: 3, name: `host:${n}`, metrics: { maxDataPoints: 100 } },
  );
  w.on('error', () => {});
  return w;
});
const withTimeout = (p) => Promise.race([p, new Promise((r) => setTimeout(() => r('TIMEOUT'), 3000))]);
try {
  for (const q of queues) for (let i = 0; i < 5; i++) await q.add('x', {}, { jobId: `before-${i}` });
  await new Promise((r) => setTimeout(r, 700));
  const pid = Number(/process_id:(\d+)/.exec(execSync(`redis-cli -p ${port} info server`).toString())[1]);
  process.kill(pid, 'SIGKILL');
  const t0 = Date.now();
  for (let i = 0; i < 60; i++) {
    try {
      await Promise.all(queues.map((q) => q.add('x', {}, { jobId: `during-${i}` })));
      break;
    } catch (e) {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await new Promise((r) => setTimeout(r, 15000));
  for (const q of queues) await q.add('x', {}, { jobId: 'after' });
  await new Promise((r) => setTimeout(r, 10000));
  const counts = await Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'completed', 'failed', 'prioritized')));
  const stuck = names.filter((n, i) => counts[i].waiting + counts[i].active > 0);
  console.log(
    'port',
    port,
    stuck.length ? `STUCK ${stuck.join(',')}` : 'ALL DONE',
    JSON.stringify(counts.map((c, i) => `${names[i]}:${c.waiting}w/${c.active}a/${c.completed}c/${c.failed}f`)),
  );
} finally {
  try {
    execSync(`redis-cli -p ${port} ping`, { stdio: 'ignore' });
  } catch {
    execSync(`redis-server ${process.env.DIR}/${port}/redis.conf`);
  }
}
await Promise.all(workers.map((w) => withTimeout(w.close())));
await Promise.all(queues.map((q) => q.close()));
conn.disconnect();
qconn.disconnect();
process.exit(0);
