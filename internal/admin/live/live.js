// The admin page: fetches /api/v1/live every two seconds and redraws the page from it.
// Everything is built with DOM calls and textContent (never markup from data), and
// nothing is loaded from anywhere but this server: the Content-Security-Policy allows
// scripts, styles and fetches from 'self' only.
'use strict';

const POLL_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';

// el builds an element: attrs are attributes (class, data-*), kids are nodes or text.
function el(tag, attrs, ...kids) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function fill(id, ...kids) { document.getElementById(id).replaceChildren(...kids.flat()); }
function text(id, s) { document.getElementById(id).textContent = s; }

function fmtRate(r) { return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2); }
function fmtPct(f) { return f === 0 ? '0 %' : f < 0.001 ? '< 0.1 %' : (100 * f).toFixed(1) + ' %'; }
function fmtMs(ms) {
  if (!ms) return '–';
  if (ms >= 1000) return (ms / 1000).toFixed(ms >= 10000 ? 0 : 2) + ' s';
  return (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toPrecision(2)) + ' ms';
}
function fmtAgo(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}
function fmtTime(iso) { return new Date(iso).toLocaleTimeString([], { hour12: false }); }
function stateClass(state) { return 'badge st-' + state.replace(/ /g, '-'); }
function statsCells(c) {
  if (!c) return [el('td', {}, '–'), el('td', {}, '–'), el('td', {}, '–'), el('td', {}, '–')];
  return [
    el('td', { 'data-field': 'rate' }, fmtRate(c.rate)),
    el('td', { 'data-field': 'errorRate', class: c.failed > 0 ? 'bad-num' : null }, fmtPct(c.errorRate)),
    el('td', { 'data-field': 'p50' }, fmtMs(c.p50Ms)),
    el('td', { 'data-field': 'p99' }, fmtMs(c.p99Ms)),
  ];
}
function emptyRow(cols, what) { return el('tr', {}, el('td', { colspan: cols, class: 'empty' }, what)); }

function renderHeader(v) {
  text('generation', v.generation);
  text('applied', v.applied ? fmtAgo(new Date(v.now) - new Date(v.applied)) : 'never');
  text('ports', v.ports && v.ports.length ? v.ports.join(', ') : 'none');
}

function renderTiles(v) {
  const t = v.calls.total;
  text('t-rate', fmtRate(t.rate));
  text('t-calls', t.calls + ' calls in ' + Math.round(v.calls.windowSeconds) + ' s');
  text('t-errors', fmtPct(t.errorRate));
  text('t-failed', t.failed + ' failed');
  document.getElementById('tile-errors').classList.toggle('alert', t.errorRate >= 0.01);
  text('t-p50', fmtMs(t.p50Ms));
  text('t-p99', fmtMs(t.p99Ms));
  text('t-inflight', v.inflight);
}

// niceCeil rounds x up to a round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power
// of ten) for the chart's scale.
function niceCeil(x) {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

// renderChart draws the last minute as bars: calls (blue), failed calls (red, from the
// bottom), the current second darker.
function renderChart(v) {
  const calls = v.calls.perSecond.calls, failed = v.calls.perSecond.failed;
  const W = 640, H = 140, left = 34, bottom = 16, pad = 8, n = calls.length;
  const top = niceCeil(Math.max(1, ...calls)), bw = (W - left) / n;
  const y = (x) => pad + (H - bottom - pad) * (1 - x / top);
  const kids = [];
  for (const f of [0, 0.5, 1]) {
    kids.push(el('svg:line', { class: 'grid', x1: left, x2: W, y1: y(top * f), y2: y(top * f) }));
    kids.push(el('svg:text', { class: 'axis', x: left - 6, y: y(top * f) + 3, 'text-anchor': 'end' }, +(top * f).toPrecision(3)));
  }
  calls.forEach((c, i) => {
    const x = left + i * bw + 1, w = Math.max(1, bw - 2);
    if (c > 0) kids.push(el('svg:rect', { class: i === n - 1 ? 'calls now' : 'calls', x, y: y(c), width: w, height: y(0) - y(c), rx: 1.5 }));
    if (failed[i] > 0) kids.push(el('svg:rect', { class: 'failed', x, y: y(failed[i]), width: w, height: y(0) - y(failed[i]), rx: 1.5 }));
  });
  for (const [i, label] of [[0, '-60 s'], [n / 2, '-30 s'], [n - 1, 'now']]) {
    kids.push(el('svg:text', { class: 'axis', x: left + i * bw + bw / 2, y: H - 3, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle' }, label));
  }
  fill('chart', kids);
}

function renderMethods(v) {
  const rows = v.calls.methods.map((m) => el('tr', { 'data-method': m.name },
    el('td', {}, el('code', {}, m.name)),
    el('td', { 'data-field': 'calls' }, m.calls),
    el('td', {}, fmtRate(m.rate)),
    el('td', { 'data-field': 'failed', class: m.failed > 0 ? 'bad-num' : null }, m.failed),
    el('td', { class: m.failed > 0 ? 'bad-num' : null }, fmtPct(m.errorRate)),
    el('td', {}, fmtMs(m.p50Ms)),
    el('td', {}, fmtMs(m.p99Ms))));
  document.querySelector('#methods tbody').replaceChildren(...(rows.length ? rows : [emptyRow(7, 'no calls in the last minute')]));
}

function endpointRow(e) {
  return el('tr', { 'data-endpoint': e.address, 'data-state': e.state },
    el('td', {}, el('code', {}, e.address)),
    el('td', {}, el('span', { class: stateClass(e.state) }, e.state)),
    el('td', { 'data-field': 'inflight' }, e.inflight),
    el('td', { 'data-field': 'calls' }, e.calls ? e.calls.calls : 0),
    ...statsCells(e.calls));
}

function endpointTable(eps) {
  return el('table', { class: 'num' },
    el('thead', {}, el('tr', {}, ['Endpoint', 'State', 'In flight', 'Calls', 'Calls / s', 'Error rate', 'p50', 'p99'].map((h) => el('th', {}, h)))),
    el('tbody', {}, eps.length ? eps.map(endpointRow) : emptyRow(8, 'no endpoints')));
}

function renderBackends(v) {
  const cards = v.backends.map((b) => {
    const up = b.endpoints.filter((e) => e.state === 'healthy' || e.state === 'slow start').length;
    return el('div', { class: 'backend', 'data-backend': b.key },
      el('div', { class: 'backend-head' },
        el('span', { class: 'key' }, b.key),
        el('span', { class: 'facts' },
          el('span', {}, el('b', {}, up + ' / ' + b.endpoints.length), ' taking calls'),
          el('span', {}, 'in flight ', el('b', {}, b.inflight)),
          el('span', {}, 'balancing ', el('b', {}, b.algorithm.replace(/_/g, ' '))),
          el('span', {}, 'health check ', el('b', {}, b.healthCheck)),
          b.slowStart && el('span', {}, 'slow start ', el('b', {}, b.slowStart)),
          b.cache && el('span', { 'data-field': 'cache' }, 'cache hits ',
            el('b', {}, Math.round(b.cache.hitRatio * 100) + '%'), ' of ' + b.cache.calls))),
      endpointTable(b.endpoints));
  });
  if (v.leaving.length) {
    cards.push(el('div', { class: 'backend' },
      el('div', { class: 'backend-head' }, el('span', { class: 'key' }, 'Left the configuration'),
        el('span', { class: 'facts' }, 'finishing the calls they have')),
      endpointTable(v.leaving)));
  }
  fill('backends', cards.length ? cards : el('p', { class: 'muted' }, 'No backends configured.'));
}

function failureRow(f) {
  const status = f.grpc_status || (f.http_status ? 'HTTP ' + f.http_status : '');
  const where = [f.db, f.collection].filter(Boolean).join(' / ');
  return el('tr', { 'data-failure': f.method },
    el('td', { class: 'mono' }, fmtTime(f.time)),
    el('td', {}, el('code', {}, f.method)),
    el('td', {}, where || el('span', { class: 'muted' }, '–')),
    el('td', { 'data-field': 'status' }, status && status !== 'OK' ? el('span', { class: 'badge st-unhealthy' }, status) : el('span', { class: 'muted' }, status)),
    el('td', {}, f.milvus_code ? [el('b', {}, f.milvus_code), ' ', f.milvus_reason] : el('span', { class: 'muted' }, '–')),
    el('td', {}, el('code', {}, f.endpoint || '–'), f.attempts > 1 ? el('span', { class: 'muted' }, ' (' + f.attempts + ' tries)') : null),
    el('td', { class: 'mono' }, fmtMs(f.duration_ms)),
    el('td', {}, el('code', {}, f.client), f.user ? el('div', { class: 'muted' }, f.user) : null),
    el('td', { class: 'mono' }, f.request_id || '', f.trace_id ? el('div', { class: 'muted' }, f.trace_id) : null));
}

function renderFailures(v) {
  const rows = v.calls.failures.slice(0, 12).map(failureRow);
  document.querySelector('#failures tbody').replaceChildren(...(rows.length ? rows : [emptyRow(9, 'no failed calls')]));
}

function certBlock(c) {
  const cls = c.daysLeft < 0 ? 'exp-bad' : c.daysLeft < 14 ? 'exp-bad' : c.daysLeft < 30 ? 'exp-soon' : 'exp-ok';
  const left = c.daysLeft < 0 ? 'expired' : 'expires in ' + c.daysLeft + ' d';
  return el('div', { class: 'cert', 'data-cert': c.ref },
    el('div', {}, el('b', {}, c.subject || c.names[0] || c.ref), el('span', { class: 'muted' }, '  issued by ' + (c.issuer || '?'))),
    el('div', { class: 'expiry' }, el('span', { class: 'badge ' + cls }, left), el('div', {}, new Date(c.notAfter).toISOString().slice(0, 10))),
    el('div', { class: 'names' }, (c.names || []).join(', '), el('span', { class: 'muted' }, '  · ' + c.ref)));
}

function routesTable(routes) {
  return el('table', { class: 'routes' }, el('tbody', {}, routes.map((r) => el('tr', {},
    el('td', {}, el('code', {}, (r.host || '*') + r.path), r.pathType !== 'Prefix' ? el('span', { class: 'muted' }, ' ' + r.pathType) : null),
    el('td', { class: 'arrow' }, '→'),
    el('td', {}, r.sslRedirect ? 'redirect to HTTPS :' + r.sslRedirect : el('code', {}, r.backend)),
    el('td', { class: 'muted' }, r.ingress)))));
}

function renderListeners(v) {
  const items = v.listeners.map((l) => el('div', { class: 'listener', 'data-port': l.port },
    el('span', { class: 'port' }, ':' + l.port), el('span', { class: 'badge st-initial proto' }, l.protocol),
    el('span', { class: 'facts' }, [l.sslPolicy, l.mutualTLS && 'mutual TLS ' + l.mutualTLS].filter(Boolean).join(' · ')),
    l.certificates.map(certBlock),
    routesTable(l.routes)));
  fill('listeners', items.length ? items : el('p', { class: 'muted' }, 'No listeners.'));
}

function renderIngresses(v) {
  const rows = v.ingresses.map((i) => el('tr', { 'data-ingress': i.namespace + '/' + i.name },
    el('td', {}, el('b', {}, i.namespace + '/' + i.name)),
    el('td', {}, i.class),
    el('td', {}, (i.hosts && i.hosts.length ? i.hosts : ['*']).join(', ')),
    el('td', {}, i.address ? el('code', {}, i.address) : el('span', { class: 'muted' }, 'pending')),
    el('td', {}, (i.ports || []).join(', ')),
    el('td', {}, i.served ? el('span', { class: 'badge st-healthy' }, 'served') : el('span', { class: 'badge st-unhealthy' }, 'not served'))));
  fill('ingresses', el('table', {},
    el('thead', {}, el('tr', {}, ['Ingress', 'Class', 'Hosts', 'Address', 'Ports', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.length ? rows : emptyRow(6, 'no Ingresses'))));
}

function renderProblems(v) {
  const items = v.problems.map((p) => el('div', { class: 'problem' }, el('span', { class: 'badge sev-' + p.severity }, p.severity), ' ', p.text));
  fill('problems', items.length ? items : el('p', { class: 'ok-text' }, 'None.'));
}

// renderRejected shows the last refused reload, if the last reload was refused: the
// configuration in force is older than what the operator last wrote.
function renderRejected(v) {
  const box = document.getElementById('rejected'), r = v.rejected;
  box.hidden = !r;
  if (!r) {
    delete box.dataset.rejected;
    return;
  }
  box.dataset.rejected = r.at;
  text('rejected-text', 'Rejected ' + fmtAgo(new Date(v.now) - new Date(r.at)) + ' (' + new Date(r.at).toISOString() + '): ' +
    r.error + '. ' + (r.servingGeneration ? 'Generation ' + r.servingGeneration + ' keeps serving.' : 'No configuration is serving.'));
  fill('rejected-problems', r.problems.map((p) => el('div', { class: 'problem', 'data-problem': p.severity },
    el('span', { class: 'badge sev-' + p.severity }, p.severity), ' ', p.text)));
}

function render(v) {
  renderHeader(v);
  renderRejected(v);
  renderTiles(v);
  renderChart(v);
  renderMethods(v);
  renderBackends(v);
  renderFailures(v);
  renderListeners(v);
  renderIngresses(v);
  renderProblems(v);
  document.body.dataset.updated = v.now;
}

function setConn(ok, why) {
  const c = document.getElementById('conn');
  c.classList.toggle('live', ok);
  c.classList.toggle('down', !ok);
  text('conn-text', ok ? 'live' : 'disconnected: ' + why);
}

async function poll() {
  try {
    const r = await fetch('/api/v1/live', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    render(await r.json());
    setConn(true);
  } catch (e) {
    setConn(false, e.message);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
