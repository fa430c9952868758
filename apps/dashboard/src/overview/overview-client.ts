/// <reference lib="dom" />
/**
 * The overview page's script, run in the browser: it polls `/overview.json` every 2 s and redraws
 * the tables and the uPlot charts. The server sends the source of these functions, in one scope
 * (see {@link overviewClientScript}), so they are type-checked and linted with the rest and must
 * use nothing but browser globals and each other. Text from jobs (failure reasons) is only ever
 * set as textContent.
 */

type Snapshot = {
  generatedAt: string;
  role: 'admin' | 'viewer';
  queues: {
    name: string;
    paused: boolean;
    counts: Record<string, number>;
    throughput: { minutes: number[]; completed: number[]; failed: number[] };
    waitMs: { p50: number | null; p95: number | null };
    processingMs: { p50: number | null; p95: number | null };
    oldestWaitingAgeMs: number | null;
    workers: { process: string; connections: number }[];
  }[];
  breakers: { provider: string; state: string; process: string; reportedAt: string }[];
  videos: Record<string, number> | null;
  database: 'ok' | 'unavailable';
  failures: { queue: string; reason: string; count: number; lastFailedAt: string | null; jobIds: string[] }[];
  audit: {
    actor: string;
    actorKind: string;
    tenant: string | null;
    action: string;
    queue: string;
    reasonFilter: string | null;
    reasonMatch: 'contains' | 'group';
    detail: string | null;
    affected: number;
    createdAt: string;
    finishedAt: string | null;
    error: string | null;
  }[];
};
type Plot = { setData(data: number[][]): void };
type PageState = { charts: Map<string, Plot>; backlog: number[][]; isAdmin: boolean };

export function byId(id: string): HTMLElement {
  return document.getElementById(id) as HTMLElement;
}

export function el(tag: string, attributes: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

export function duration(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

export function drawChart(
  state: PageState,
  key: string,
  holder: HTMLElement,
  series: { label: string; stroke: string }[],
  data: number[][],
  height: number,
): void {
  const existing = state.charts.get(key);
  if (existing) {
    existing.setData(data);
    return;
  }
  const UPlot = (window as unknown as { uPlot: new (options: unknown, data: number[][], target: HTMLElement) => Plot }).uPlot;
  const options = {
    width: Math.max(200, holder.clientWidth || 260),
    height,
    legend: { show: true },
    scales: { x: { time: true } },
    axes: [{}, { size: 40 }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5, fill: `${s.stroke}22` }))],
  };
  state.charts.set(key, new UPlot(options, data, holder));
}

/** A group of failures: its first line, matched exactly (the group's jobs alone). */
interface FailureGroupTarget {
  reason: string;
  count: number;
}

export async function act(state: PageState, queue: string, action: string, group: FailureGroupTarget | null): Promise<void> {
  // The count is of the newest failures read; the action takes every failed job of the group.
  const which = group
    ? `every failed job of ${queue} failing with "${group.reason}" (${group.count} among its newest failures when last read; older ones of this group too)`
    : `every failed job of ${queue}`;
  if (action === 'discard-failed' && !window.confirm(`Remove ${which}?`)) return;
  const response = await fetch(`/overview/queues/${encodeURIComponent(queue)}/actions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(group ? { action, reason: group.reason, match: 'group' } : { action }),
  });
  const body = await response.json().catch(() => ({}));
  byId('notice').textContent = response.ok
    ? `${action} on ${queue}: ${body.affected} job(s)`
    : `${action} on ${queue} refused: ${body.detail ?? response.status}`;
  await refresh(state);
}

export function actionButton(state: PageState, label: string, queue: string, action: string, group: FailureGroupTarget | null): HTMLElement {
  const node = el('button', { type: 'button', 'data-action': action, 'data-queue': queue }, label);
  node.addEventListener('click', () => void act(state, queue, action, group));
  return node;
}

export function renderQueues(state: PageState, snapshot: Snapshot): void {
  const rows = snapshot.queues.map((queue) => {
    const c = queue.counts;
    const controls = state.isAdmin
      ? [
          queue.paused ? actionButton(state, 'Resume', queue.name, 'resume', null) : actionButton(state, 'Pause', queue.name, 'pause', null),
          ...(c.failed
            ? [actionButton(state, 'Retry failed', queue.name, 'retry-failed', null), actionButton(state, 'Discard failed', queue.name, 'discard-failed', null)]
            : []),
        ]
      : [];
    const workers = queue.workers.map((w) => `${w.process}${w.connections > 1 ? ` ×${w.connections}` : ''}`).join(', ') || 'none';
    return el(
      'tr',
      { 'data-queue': queue.name },
      el('td', {}, el('a', { href: `/queue/${encodeURIComponent(queue.name)}` }, queue.name), queue.paused ? el('span', { class: 'paused' }, ' paused') : ''),
      ...[c.waiting, c.active, c.delayed, c.prioritized, c.failed].map((n, i) => el('td', { class: 'num', 'data-count': String(i) }, String(n ?? 0))),
      el('td', { class: 'num' }, String(sum(queue.throughput.completed))),
      el('td', { class: 'num' }, String(sum(queue.throughput.failed))),
      el('td', {}, `${duration(queue.waitMs.p50)} / ${duration(queue.waitMs.p95)}`),
      el('td', {}, `${duration(queue.processingMs.p50)} / ${duration(queue.processingMs.p95)}`),
      el('td', {}, duration(queue.oldestWaitingAgeMs)),
      el('td', { class: 'workers' }, workers),
      el('td', {}, ...controls),
    );
  });
  byId('queue-rows').replaceChildren(...rows);
}

export function renderCharts(state: PageState, snapshot: Snapshot): void {
  const holder = byId('queue-charts');
  for (const queue of snapshot.queues) {
    let box = holder.querySelector(`[data-chart="${queue.name}"]`) as HTMLElement | null;
    if (!box) {
      box = el('div', { class: 'chart', 'data-chart': queue.name }, el('h3', {}, queue.name));
      holder.append(box);
    }
    const t = queue.throughput;
    const series = [
      { label: 'completed', stroke: '#1a7f37' },
      { label: 'failed', stroke: '#cf222e' },
    ];
    drawChart(state, `queue:${queue.name}`, box, series, [t.minutes, t.completed, t.failed], 120);
  }
  const total = (key: string) => sum(snapshot.queues.map((queue) => queue.counts[key] ?? 0));
  const point = [Math.floor(Date.now() / 1000), total('waiting') + total('prioritized'), total('active'), total('failed')];
  for (const [index, value] of point.entries()) state.backlog[index]?.push(value);
  if ((state.backlog[0]?.length ?? 0) > 900) for (const series of state.backlog) series.shift();
  const series = [
    { label: 'waiting', stroke: '#0969da' },
    { label: 'active', stroke: '#9a6700' },
    { label: 'failed', stroke: '#cf222e' },
  ];
  drawChart(state, 'backlog', byId('backlog-chart'), series, state.backlog, 180);
}

export function renderFailures(state: PageState, snapshot: Snapshot): void {
  const rows = snapshot.failures.map((f) => {
    const jobLinks = f.jobIds.map((id) => el('a', { href: `/queue/${encodeURIComponent(f.queue)}/${encodeURIComponent(id)}`, class: 'job' }, id.slice(0, 12)));
    const buttons = state.isAdmin
      ? [actionButton(state, 'Retry these', f.queue, 'retry-failed', f), actionButton(state, 'Discard these', f.queue, 'discard-failed', f)]
      : [];
    return el(
      'tr',
      { 'data-failure-queue': f.queue },
      el('td', {}, el('a', { href: `/queue/${encodeURIComponent(f.queue)}?status=failed` }, f.queue)),
      el('td', { class: 'reason' }, f.reason),
      el('td', { class: 'num' }, String(f.count)),
      el('td', {}, f.lastFailedAt ? new Date(f.lastFailedAt).toLocaleTimeString() : '–'),
      el('td', {}, ...jobLinks),
      el('td', {}, ...buttons),
    );
  });
  byId('failure-rows').replaceChildren(...rows);
}

export function renderTables(snapshot: Snapshot): void {
  const tint: Record<string, string> = { closed: 'ok', open: 'bad' };
  byId('breaker-rows').replaceChildren(
    ...(snapshot.breakers.length
      ? snapshot.breakers.map((b) => el('tr', {}, el('td', {}, b.provider), el('td', { class: tint[b.state] ?? 'warn' }, b.state), el('td', {}, b.process)))
      : [el('tr', {}, el('td', { colspan: '3' }, 'no worker-io process has reported'))]),
  );
  // The database away: say so, rather than show no videos and no actions as if there were none.
  const away = (columns: string, what: string) => [
    el('tr', {}, el('td', { colspan: columns, class: 'bad', 'data-database': 'unavailable' }, `database unreachable: ${what}`)),
  ];
  byId('video-rows').replaceChildren(
    ...(snapshot.database === 'unavailable'
      ? away('2', 'counts unknown')
      : Object.entries(snapshot.videos ?? {}).map(([status, count]) =>
          el('tr', {}, el('td', {}, status), el('td', { class: 'num', 'data-status': status }, String(count))),
        )),
  );
  if (snapshot.database === 'unavailable') {
    byId('audit-rows').replaceChildren(...away('7', 'the audit cannot be read (queue actions are refused until it is back)'));
    return;
  }
  byId('audit-rows').replaceChildren(
    ...snapshot.audit.map((a) =>
      el(
        'tr',
        { 'data-audit-action': a.action },
        el('td', {}, new Date(a.createdAt).toLocaleString()),
        el('td', {}, `${a.actor} (${a.actorKind}${a.tenant ? `, ${a.tenant}` : ''})`),
        el('td', {}, a.action),
        el('td', {}, a.queue),
        el('td', {}, a.detail ?? (a.reasonFilter === null ? 'all' : a.reasonMatch === 'group' ? `= ${a.reasonFilter}` : `contains ${a.reasonFilter}`)),
        // Bull Board's own changes do not say how many jobs they touched.
        el('td', { class: 'num' }, a.action === 'board' ? '–' : String(a.affected)),
        el('td', { 'data-audit-outcome': '' }, auditOutcome(a)),
      ),
    ),
  );
}

/** How an audited action ended: done, failed (and why), or not finished (running, or its process stopped). */
function auditOutcome(action: Snapshot['audit'][number]): string {
  if (action.error !== null) return `failed: ${action.error}`;
  return action.finishedAt === null ? 'not finished' : 'done';
}

export async function refresh(state: PageState): Promise<void> {
  try {
    const response = await fetch('/overview.json', { headers: { accept: 'application/json' } });
    if (!response.ok) {
      // A problem says why (Redis away, say); the page keeps what it showed and polls again.
      const problem = (await response.json().catch(() => null)) as { detail?: unknown } | null;
      throw new Error(typeof problem?.detail === 'string' ? problem.detail : `overview answered ${response.status}`);
    }
    const snapshot = (await response.json()) as Snapshot;
    state.isAdmin = snapshot.role === 'admin';
    renderQueues(state, snapshot);
    renderFailures(state, snapshot);
    renderTables(snapshot);
    renderCharts(state, snapshot);
    byId('updated').textContent = `updated ${new Date(snapshot.generatedAt).toLocaleTimeString()}`;
    document.body.dataset.loaded = 'true';
  } catch (error) {
    byId('updated').textContent = `refresh failed: ${(error as Error).message}`;
  }
}

export function startOverview(): void {
  const state: PageState = { charts: new Map(), backlog: [[], [], [], []], isAdmin: false };
  void refresh(state);
  window.setInterval(() => void refresh(state), 2000);
}

/** The served script: every function above, in one scope, then the start. */
export function overviewClientScript(): string {
  const parts = [
    byId,
    el,
    duration,
    sum,
    drawChart,
    act,
    actionButton,
    renderQueues,
    renderCharts,
    renderFailures,
    auditOutcome,
    renderTables,
    refresh,
    startOverview,
  ];
  return `'use strict';\n(function () {\n${parts.map((part) => part.toString()).join('\n')}\nstartOverview();\n})();\n`;
}
