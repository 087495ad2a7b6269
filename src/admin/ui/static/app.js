// The meshmedic dashboard: follows /v1/stream (Server-Sent Events read through fetch, so that a bearer
// token can be sent), draws each service's endpoints with small live charts and the decision timeline,
// and shows the optional panels (gossip, xDS, audit, learning) of whichever routes answer.
'use strict';
const HISTORY = 60; // samples kept per endpoint for the sparklines (one per second)
const state = { view: null, decisions: [], history: new Map(), filter: null, seen: new Set() };
const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem('meshmedic-token') || '';
const authHeaders = () => (token() ? { authorization: 'Bearer ' + token() } : {});

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

const fmt = {
  ms: (v) => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)),
  pct: (v) => (v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1) + '%',
  time: (iso) => new Date(iso).toLocaleTimeString([], { hour12: false }),
};

// ---- stream ----
async function follow() {
  for (;;) {
    try {
      const res = await fetch('../v1/stream', { headers: authHeaders(), cache: 'no-store' });
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      setConn(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          onFrame(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (err) {
      console.warn('stream:', err);
    }
    setConn(false);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function onFrame(text) {
  let event = 'message';
  let data = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  const msg = JSON.parse(data);
  if (event === 'view') onView(msg);
  else if (event === 'decision') onDecision(msg);
}

function setConn(on) {
  const c = $('conn');
  c.textContent = on ? 'live' : 'reconnecting';
  c.className = 'badge ' + (on ? 'on' : 'off');
}

// ---- endpoints ----
function onView(view) {
  state.view = view;
  const now = Date.now();
  for (const ep of view.endpoints) {
    let h = state.history.get(ep.id);
    if (!h) state.history.set(ep.id, (h = []));
    if (h.length && now - h[h.length - 1].t < 500) h.pop(); // a decision's extra view replaces the last sample
    h.push({ t: now, rps: ep.window.rps, p99: ep.window.p99Ms || 0, err: ep.window.errorRate });
    if (h.length > HISTORY) h.shift();
  }
  renderServices();
}

function renderServices() {
  const view = state.view;
  const root = $('services');
  const bySvc = new Map();
  for (const ep of view.endpoints) {
    if (!bySvc.has(ep.service)) bySvc.set(ep.service, []);
    bySvc.get(ep.service).push(ep);
  }
  const frag = document.createDocumentFragment();
  for (const svc of view.services) {
    const eps = bySvc.get(svc.name) || [];
    const rows = eps.map((ep) => {
      const w = ep.window;
      const rps = el('canvas', { width: 90, height: 22, title: 'requests/s, last ' + HISTORY + ' s' });
      const p99 = el('canvas', { width: 90, height: 22, title: 'p99 ms, last ' + HISTORY + ' s' });
      const tr = el('tr', { class: 'ep' + (state.filter === ep.id ? ' sel' : ''), 'data-id': ep.id, onclick: () => setFilter(state.filter === ep.id ? null : ep.id) },
        el('td', {}, ep.id),
        el('td', {}, el('span', { class: 'badge ' + ep.state, title: ep.reason ? ep.reason + ' (' + ep.source + ')' : '' }, ep.state)),
        el('td', { class: 'num', title: 'static weight × health factor' }, ep.weight + (ep.weightFactor < 1 ? ' × ' + ep.weightFactor.toFixed(2) : '')),
        el('td', { class: 'num' }, w.rps), el('td', { class: 'num' }, fmt.pct(w.errorRate)),
        el('td', { class: 'num' }, fmt.ms(w.p50Ms)), el('td', { class: 'num' }, fmt.ms(w.p99Ms)),
        el('td', {}, rps), el('td', {}, p99),
        el('td', {}, actionButton(ep)));
      const h = state.history.get(ep.id) || [];
      spark(rps, h.map((s) => s.rps), '#58a6ff');
      spark(p99, h.map((s) => s.p99), '#d29922');
      return tr;
    });
    const load = svc.priorityLoad && svc.priorityLoad.length > 1 ? ' · priority load ' + svc.priorityLoad.join('/') : '';
    frag.append(el('section', {},
      el('h2', {}, svc.name, el('span', { class: 'muted' }, ' · ' + eps.length + ' endpoints' + load), svc.panic ? el('span', { class: 'panic' }, 'PANIC') : null),
      el('table', {}, el('thead', {}, el('tr', {}, ...['endpoint', 'state', 'weight', 'rps', 'errors', 'p50 ms', 'p99 ms', 'rps', 'p99', ''].map((h) => el('th', {}, h)))), el('tbody', {}, ...rows))));
  }
  root.replaceChildren(frag);
}

function spark(canvas, values, color) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const max = Math.max(...values, 1e-9);
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (HISTORY - 1)) * w;
    const y = h - 1 - (v / max) * (h - 2);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function actionButton(ep) {
  const out = ep.state === 'ejected' || ep.state === 'draining';
  return el('button', { title: out ? 'restore this endpoint' : 'eject this endpoint for 60 s', onclick: (e) => { e.stopPropagation(); act(ep.id, out ? 'restore' : 'eject'); } }, out ? 'restore' : 'eject');
}

async function act(id, action) {
  const body = action === 'restore' ? { reason: 'dashboard' } : { reason: 'dashboard', durationMs: 60000 };
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await fetch('../v1/endpoints/' + encodeURIComponent(id) + '/' + action, { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders() }, body: JSON.stringify(body) });
    if (res.status !== 401) {
      if (!res.ok) alert(action + ' failed: ' + (await res.text()));
      return;
    }
    const t = prompt('This admin API needs its bearer token (admin.token):');
    if (!t) return;
    sessionStorage.setItem('meshmedic-token', t);
  }
}

// ---- decisions ----
function onDecision(d) {
  if (state.seen.has(d.seq)) return;
  state.seen.add(d.seq);
  state.decisions.push(d);
  if (state.decisions.length > 500) state.seen.delete(state.decisions.shift().seq);
  renderTimeline();
}

function setFilter(id) {
  state.filter = id;
  $('filter').hidden = id === null;
  $('filter-id').textContent = id || '';
  renderTimeline();
  if (state.view) renderServices();
}

function renderTimeline() {
  const list = state.decisions.filter((d) => state.filter === null || d.target === state.filter || (state.view && d.target === serviceOf(state.filter)));
  const items = list.slice(-200).reverse().map((d) => {
    const ev = Object.entries(d.evidence || {}).map(([k, v]) => k + '=' + (typeof v === 'number' ? +v.toFixed(4) : v)).join(' ');
    return el('li', { 'data-target': d.target },
      el('span', { class: 'muted' }, fmt.time(d.time) + ' '),
      el('b', { class: d.applied ? d.action === 'restore' ? 'healthy' : d.action === 'eject' ? 'ejected' : 'degraded' : 'refused' }, d.action),
      ' ' + d.target + ' ', el('span', { class: 'muted' }, d.reason + ' · ' + d.source + (d.applied ? '' : ' · refused: ' + d.refused)),
      ev ? el('div', { class: 'ev' }, ev) : null);
  });
  $('timeline').replaceChildren(...(items.length ? items : [el('li', { class: 'muted' }, 'no decisions yet')]));
}

function serviceOf(id) {
  const ep = state.view.endpoints.find((e) => e.id === id);
  return ep ? ep.service : null;
}

// ---- optional panels: shown when their route answers ----
const PANELS = [
  { id: 'p-members', url: '../v1/members', render: (b) => table(['member', 'address', 'state'], (b.members || []).map((m) => [m.id + (m.self ? ' (self)' : ''), m.address, badge(m.state)])) },
  { id: 'p-xds', url: '../v1/xds', render: (b) => table(['node', 'type', 'state', 'ACK', 'NACK'], Object.entries(b.nodes || {}).flatMap(([node, streams]) => streams.flatMap((s) => s.types.map((t) => [node, t.typeUrl.split('.').pop(), badge(t.state), t.acks, t.nacks])))) },
  // The checkpoint is a signed note (text): origin, size, root hash, then signature lines.
  { id: 'p-audit', url: '../v1/audit/checkpoint', text: true, render: (t) => el('pre', { class: 'note' }, t) },
  { id: 'p-learn', url: '../v1/learn', render: (b) => table(['service', 'prediction', 'forecasts', 'de-weights / drains'], (b.services || []).map((s) => {
    const p = s.prediction;
    if (!p) return [s.service, 'off (' + (s.policy || 'no policy') + ')', '–', '–'];
    const at = (p.endpoints || []).filter((e) => e.forecast);
    return [s.service, p.enabled ? 'on, ' + Math.round(p.horizonMs / 1000) + ' s ahead' : 'off', at.length ? at.map((e) => e.id + ' ' + e.forecast.severity).join(', ') : 'none', (p.counters.degrade || 0) + ' / ' + (p.counters.drain || 0)];
  })) },
];

function badge(s) {
  return el('span', { class: 'badge ' + s }, s);
}

function table(head, rows) {
  if (!rows.length) return el('p', { class: 'muted' }, 'none');
  return el('table', {}, el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))), el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))));
}

async function refreshPanels() {
  for (const p of PANELS) {
    if (p.absent) continue;
    try {
      const res = await fetch(p.url, { headers: authHeaders(), cache: 'no-store' });
      if (res.status === 404) {
        p.absent = true; // not enabled on this sidecar: stop asking
        continue;
      }
      if (!res.ok) continue;
      const body = p.text ? await res.text() : await res.json();
      const sec = $(p.id);
      sec.hidden = false;
      sec.querySelector('.body').replaceChildren(p.render(body));
    } catch {
      /* next round */
    }
  }
}

// ---- header ----
async function loadStatus() {
  try {
    const s = await (await fetch('../v1/status', { headers: authHeaders() })).json();
    $('node').textContent = s.node + ' · v' + s.version;
    $('node').className = 'muted';
    $('loglevel').value = s.logLevel;
  } catch {
    /* shown as not connected by the stream */
  }
}

$('loglevel').addEventListener('change', async (e) => {
  const res = await fetch('../v1/log', { method: 'PUT', headers: { 'content-type': 'application/json', ...authHeaders() }, body: JSON.stringify({ level: e.target.value }) });
  if (!res.ok) alert('log level: ' + (await res.text()));
});
$('filter-clear').addEventListener('click', () => setFilter(null));

loadStatus();
renderTimeline();
follow();
refreshPanels();
setInterval(refreshPanels, 5000);
