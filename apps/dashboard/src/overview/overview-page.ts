import type { DashboardRole } from '../accounts.js';

const STYLE = `
body{font:14px system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{display:flex;gap:1.5rem;align-items:baseline;padding:.8rem 1.5rem;background:#24292f;color:#fff}
header a{color:#9ecbff}header h1{font-size:1.2rem;margin:0}
main{padding:1rem 1.5rem}section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.8rem 1rem;margin-bottom:1rem}
h2{font-size:1rem;margin:.2rem 0 .6rem}h3{font-size:.85rem;margin:.2rem 0;font-weight:600}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eaeef2;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{font-weight:600;background:#f6f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}.paused{color:#9a6700;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.8rem}.chart{min-width:0}
.row{display:grid;grid-template-columns:2fr 1fr 1fr;gap:1rem}.reason{font-family:ui-monospace,monospace;font-size:12px;word-break:break-word}
.workers{font-size:12px;color:#57606a}button{margin:0 .2rem .2rem 0;font-size:12px}a.job{margin-right:.4rem;font-family:ui-monospace,monospace;font-size:12px}
#notice{color:#0969da}#updated{color:#57606a;font-size:12px}
`;

/**
 * The overview's HTML: empty tables the script fills from `/overview.json` every 2 s. No inline
 * script (the page's CSP allows only this origin's); the role is shown, and the script draws
 * action buttons only for the admin. `boardPath` is where Bull Board opens (the flows' queue).
 */
export function overviewPage(role: DashboardRole, boardPath: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clipline overview</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/overview/assets/uplot/uPlot.min.css">
<style>${STYLE}</style></head>
<body data-role="${role}">
<header><h1>clipline</h1><a href="/" aria-current="page">Overview</a><a href="${boardPath}" id="bull-board-link">Queues and flows (Bull Board)</a><a href="/status">Status</a><a href="/metrics">Metrics</a>
<span>signed in as ${role === 'admin' ? 'admin' : 'viewer (read-only)'}</span><span id="updated">loading…</span></header>
<main>
<p id="notice" role="status"></p>
<section><h2>Queues</h2><table><thead><tr><th>queue</th><th class="num">waiting</th><th class="num">active</th><th class="num">delayed</th><th class="num">prioritized</th><th class="num">failed</th><th class="num">completed / h</th><th class="num">failed / h</th><th>wait p50 / p95</th><th>processing p50 / p95</th><th>oldest waiting</th><th>workers (process)</th><th></th></tr></thead><tbody id="queue-rows"></tbody></table></section>
<section><h2>Backlog, live</h2><div id="backlog-chart"></div></section>
<section><h2>Completed and failed per minute, last hour</h2><div class="grid" id="queue-charts"></div></section>
<div class="row">
<section><h2>Recent failures by reason</h2><p class="hint">Grouped from each queue's 100 newest failures; the buttons act on every failed job of the group, older ones included.</p><table><thead><tr><th>queue</th><th>reason</th><th class="num">of the newest 100</th><th>last</th><th>newest jobs</th><th></th></tr></thead><tbody id="failure-rows"></tbody></table></section>
<section><h2>Videos by status</h2><table><tbody id="video-rows"></tbody></table></section>
<section><h2>Circuit breakers</h2><table><thead><tr><th>provider</th><th>state</th><th>process</th></tr></thead><tbody id="breaker-rows"></tbody></table></section>
</div>
<section><h2>Audit of queue actions</h2><table><thead><tr><th>when</th><th>who</th><th>action</th><th>queue</th><th>reason filter</th><th class="num">jobs</th><th>outcome</th></tr></thead><tbody id="audit-rows"></tbody></table></section>
</main>
<script src="/overview/assets/uplot/uPlot.iife.min.js"></script>
<script src="/overview/assets/overview.js"></script>
</body></html>`;
}
