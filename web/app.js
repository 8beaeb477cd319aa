// The dispatcher's web dashboard: one page, no framework, nothing from
// elsewhere. It loads /api/overview once, then follows /api/stream
// (server-sent events read through fetch, so the token can go in a header)
// and redraws what changed. Everything the daemon sends is shown as text
// (textContent), never as markup.

const COLOURS = ['#0969da', '#8250df', '#bf3989', '#1a7f37', '#bc4c00', '#0550ae', '#953800', '#116329', '#6639ba', '#a40e26', '#4d2d00', '#1b1f24', '#0a3069', '#3d1e72', '#5a1e02', '#033a16'];
const HOUR_MS = 3600_000;
/** The daemon samples every line every 5 s (engine/line-history.ts). */
const SAMPLE_MS = 5_000;

const page = {
  token: sessionStorage.getItem('dispatcher-token') || '',
  status: null,
  history: {},
  events: [],
  actions: false,
  filter: '',
  offset: 0,
  matched: 0,
  /** The clients table's order: 'address' or 'bytes' (busiest first). */
  order: 'address',
  clientsAsked: 0,
};

/** How often a visible clients table is read again, for its bytes (the daemon reads the counters at most every 5 s). */
const CLIENTS_EVERY_MS = 10_000;

const TOKEN_NEEDED = 'this dashboard needs its token: enter it above';

const $ = (id) => document.getElementById(id);

function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function headers(extra = {}) {
  return page.token ? { ...extra, authorization: `Bearer ${page.token}` } : extra;
}

function notice(text) {
  const box = $('notice');
  box.textContent = text;
  box.hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(body.error || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function act(path, body) {
  try {
    const result = await api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    notice('');
    return result;
  } catch (error) {
    notice(error.status === 401 || error.status === 403 ? `refused: ${error.message}` : `failed: ${error.message}`);
    return null;
  }
}

// ── numbers in words ───────────────────────────────────────────────────────

function bits(bytesPerSecond) {
  if (bytesPerSecond === null || bytesPerSecond === undefined) return '–';
  const b = bytesPerSecond * 8;
  if (b >= 1e9) return `${(b / 1e9).toFixed(1)} Gbit/s`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} Mbit/s`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kbit/s`;
  return `${Math.round(b)} bit/s`;
}

function volume(bytes) {
  if (bytes === null || bytes === undefined) return '–';
  if (bytes >= 1e12) return `${(bytes / 1e12).toFixed(1)} TB`;
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

function ms(value) {
  return value === null || value === undefined ? '–' : `${value < 10 ? value.toFixed(2) : Math.round(value)} ms`;
}

function when(epochMs) {
  return new Date(epochMs).toLocaleString();
}

function rttOf(health) {
  const live = (health?.targets || []).filter((t) => t.avgRttMs !== null);
  return live.length ? live.reduce((sum, t) => sum + t.avgRttMs, 0) / live.length : null;
}

function lossOf(health) {
  return Math.max(0, ...(health?.targets || []).map((t) => t.lossPercent));
}

/** The word and colour of a line: its verdict (the probes'), degraded, or standing by for a lower tier. */
function stateOf(uplink) {
  const verdict = uplink.health?.state ?? uplink.state;
  if (verdict === 'down') return 'down';
  if (verdict === 'unknown') return 'unknown';
  if (uplink.degraded) return 'degraded';
  return uplink.role === 'standby' ? 'standby' : 'up';
}

function colourOf(name) {
  const index = (page.status?.uplinks || []).findIndex((u) => u.name === name);
  return COLOURS[Math.max(0, index) % COLOURS.length];
}

// ── drawing ────────────────────────────────────────────────────────────────

function drawSummary() {
  const s = page.status;
  if (!s) return;
  const worst = Math.max(0, ...s.uplinks.map((u) => u.health?.detectionMs ?? 0));
  const carrying = s.uplinks.filter((u) => u.role === 'carrying').length;
  $('summary').textContent =
    `${s.clients} clients · ${carrying} of ${s.uplinks.length} lines carrying · a dead line is found within ${(worst / 1000).toFixed(1)} s · ${s.balance} balancing · up ${Math.round(s.uptimeSeconds / 60)} min · version ${s.version}`;
}

function drawLines() {
  const s = page.status;
  if (!s) return;
  const box = $('lines');
  box.replaceChildren(
    ...s.uplinks.map((u) => {
      const state = stateOf(u);
      const last = (page.history[u.name] || []).at(-1);
      const share = s.clients > 0 ? Math.round((u.clients / s.clients) * 100) : 0;
      const buttons = element(
        'div',
        {},
        element('button', { type: 'button', class: 'action', dataset: { line: u.name, to: 'down' }, onclick: () => act('/api/line', { uplink: u.name, state: 'down' }) }, 'take down'),
        ' ',
        element('button', { type: 'button', class: 'action', dataset: { line: u.name, to: 'up' }, onclick: () => act('/api/line', { uplink: u.name, state: 'up' }) }, 'give back'),
      );
      return element(
        'article',
        { class: `line ${state}`, dataset: { uplink: u.name } },
        element('div', {}, element('span', { class: 'name' }, u.name), ' ', element('span', { class: 'iface' }, `(${u.interface})`), ' ', element('span', { class: 'state' }, state)),
        element(
          'dl',
          {},
          element('dt', {}, 'RTT'),
          element('dd', { class: 'rtt' }, ms(rttOf(u.health))),
          element('dt', {}, 'loss'),
          element('dd', { class: 'loss' }, `${lossOf(u.health)} %`),
          element('dt', {}, 'in / out'),
          element('dd', {}, `${bits(last?.rx)} / ${bits(last?.tx)}`),
          element('dt', {}, 'clients'),
          element('dd', { class: 'clients' }, `${u.clients} (${share} %)`),
          element('dt', {}, 'weight, tier'),
          element('dd', {}, `${u.weight}, ${u.tier}`),
          element('dt', {}, 'address'),
          element('dd', {}, `${u.address ?? '–'} via ${u.gateway ?? '–'}`),
        ),
        element('div', { class: 'why' }, state === 'up' ? '' : u.degraded || u.reason),
        buttons,
      );
    }),
  );
  const bar = $('share');
  bar.replaceChildren(
    ...s.uplinks
      .filter((u) => u.clients > 0)
      .map((u) => {
        const part = element('span', { title: `${u.name}: ${u.clients} clients` }, `${u.name} ${u.clients}`);
        part.style.width = `${(u.clients / Math.max(1, s.clients)) * 100}%`;
        part.style.background = colourOf(u.name);
        return part;
      }),
  );
}

const SVG = 'http://www.w3.org/2000/svg';

/** The newest sample's time: the charts run on the gateway's clock, not the browser's (which may be another machine's). */
function chartNow() {
  return Math.max(0, ...Object.values(page.history).flatMap((samples) => (samples.length > 0 ? [samples.at(-1).t] : [])));
}

/** The time the charts span: the last hour, or less while there is less (at least 10 minutes). */
function chartSpan(now) {
  const oldest = Math.min(now, ...Object.values(page.history).flatMap((samples) => (samples.length > 0 ? [samples[0].t] : [])));
  return Math.min(HOUR_MS, Math.max(10 * 60_000, now - oldest));
}

function svgText(x, y, text, anchor = 'start') {
  const label = document.createElementNS(SVG, 'text');
  label.setAttribute('x', String(x));
  label.setAttribute('y', String(y));
  label.setAttribute('text-anchor', anchor);
  label.textContent = text;
  return label;
}

/** One chart: a polyline per line over the span, scaled to the largest value shown. */
function drawChart(id, pick, format) {
  const svg = $(id);
  const now = chartNow();
  const span = chartSpan(now);
  const series = Object.entries(page.history).map(([name, samples]) => [name, samples.filter((s) => s.t > now - span)]);
  const top = Math.max(0, ...series.flatMap(([, samples]) => samples.map(pick).filter((v) => v !== null && v !== undefined)));
  const scale = top > 0 ? top * 1.1 : 1;
  const nodes = [];
  for (const [name, samples] of series) {
    // A gap (no value) breaks the line into pieces rather than drawing through it.
    let piece = [];
    const flush = () => {
      if (piece.length > 0) {
        const line = document.createElementNS(SVG, 'polyline');
        line.setAttribute('points', piece.join(' '));
        line.setAttribute('stroke', colourOf(name));
        line.dataset.uplink = name;
        nodes.push(line);
      }
      piece = [];
    };
    let last = null;
    for (const sample of samples) {
      const value = pick(sample);
      // Missing samples (the dashboard was off a while) break the line too.
      if (last !== null && sample.t - last > 3 * SAMPLE_MS) flush();
      last = sample.t;
      if (value === null || value === undefined) flush();
      else piece.push(`${(((sample.t - (now - span)) / span) * 400).toFixed(1)},${(118 - (value / scale) * 108).toFixed(1)}`);
    }
    flush();
  }
  nodes.push(svgText(2, 9, `max ${format(top)}`), svgText(2, 117, `−${Math.round(span / 60_000)} min`), svgText(398, 117, 'now', 'end'));
  svg.replaceChildren(...nodes);
}

function drawCharts() {
  $('legend').replaceChildren(
    ...(page.status?.uplinks || []).map((u) => {
      const swatch = element('i');
      swatch.style.background = colourOf(u.name);
      return element('span', {}, swatch, u.name);
    }),
  );
  drawChart('chart-rtt', (s) => s.rttMs, ms);
  drawChart(
    'chart-loss',
    (s) => (s.state === 'unknown' ? null : s.lossPercent),
    (v) => `${v} %`,
  );
  drawChart(
    'chart-rx',
    (s) => (s.rx === null ? null : s.rx * 8),
    (v) => bits(v / 8),
  );
  drawChart(
    'chart-tx',
    (s) => (s.tx === null ? null : s.tx * 8),
    (v) => bits(v / 8),
  );
}

/** How an event reads at a glance: bad news red, good news green, the rest plain. */
function toneOf(event) {
  if (event.kind === 'failover' || event.kind === 'refused' || ((event.kind === 'verdict' || event.kind === 'degraded' || event.kind === 'run' || event.kind === 'ddns') && /→ (down|degraded)|failing|out of sync/.test(event.text)))
    return 'bad';
  if (event.kind === 'failback' || event.kind === 'verdict' || event.kind === 'degraded') return 'good';
  return 'plain';
}

function drawEvents() {
  $('events').replaceChildren(
    ...page.events
      .slice()
      .reverse()
      .map((e) => element('li', { value: String(e.seq), dataset: { kind: e.kind } }, element('time', {}, new Date(e.at).toLocaleTimeString()), element('span', { class: `kind ${toneOf(e)}` }, e.kind), e.text)),
  );
}

async function loadClients() {
  const query = new URLSearchParams({ q: page.filter, offset: String(page.offset), order: page.order });
  // Typing sends one request per pause: only the newest one's answer is drawn, whatever order they come back in.
  const asked = ++page.clientsAsked;
  const table = await api(`/api/clients?${query}`);
  if (asked !== page.clientsAsked) return;
  page.matched = table.matched;
  page.offset = table.offset;
  // The order the daemon used: address order when the counters could not be read.
  for (const order of ['address', 'bytes']) $(`by-${order}`).setAttribute('aria-pressed', String(order === table.order));
  $('clients-count').textContent = page.filter ? `${table.matched} of ${table.total} match` : `${table.total}`;
  $('page').textContent = table.matched === 0 ? 'none' : `${table.offset + 1}–${table.offset + table.rows.length} of ${table.matched}`;
  const pools = (page.status?.uplinks || []).map((u) => u.name);
  $('clients').tBodies[0].replaceChildren(
    ...table.rows.map((row) => {
      const pin = element('select', { 'aria-label': `pin ${row.ip}` }, element('option', { value: '' }, 'pin to…'), ...pools.map((name) => element('option', { value: name }, name)));
      pin.addEventListener('click', (event) => event.stopPropagation());
      pin.addEventListener('change', () => pin.value && act('/api/assign', { ip: row.ip, uplink: pin.value }).then(refreshClients));
      const release = element(
        'button',
        {
          type: 'button',
          class: 'action',
          onclick: (event) => {
            event.stopPropagation();
            act('/api/release', { ip: row.ip }).then(refreshClients);
          },
        },
        'release',
      );
      return element(
        'tr',
        { dataset: { ip: row.ip, pool: row.pool }, onclick: () => explain(row.ip) },
        element('td', {}, row.ip),
        element('td', {}, row.mac || '–'),
        element('td', { class: 'pool' }, row.pool),
        element('td', {}, row.pinned ? 'pinned' : ''),
        element('td', {}, when(row.since)),
        element('td', {}, when(row.lastSeen)),
        element('td', { class: 'num bytes', title: row.bytes === null ? 'the counters could not be read' : `${row.bytes} bytes sent and received` }, volume(row.bytes)),
        element('td', { class: 'v6' }, row.ipv6.join(' ')),
        element('td', {}, pin, ' ', release),
      );
    }),
  );
}

function refreshClients() {
  loadClients().catch((error) => notice(`clients: ${error.message}`));
}

async function explain(ip) {
  $('explain-ip').value = ip;
  try {
    $('explain').textContent = (await api(`/api/explain?ip=${encodeURIComponent(ip)}`)).text;
  } catch (error) {
    $('explain').textContent = error.message;
  }
}

function drawAll() {
  drawSummary();
  drawLines();
  drawCharts();
}

// ── the live stream ────────────────────────────────────────────────────────

function received(event, data) {
  if (event === 'status') {
    // Another daemon (a restart while the stream held): everything is read again.
    if (page.status && page.status.startedAt !== data.startedAt) {
      start().catch(() => undefined);
      return;
    }
    const clientsChanged = page.status?.clients !== data.clients;
    page.status = data;
    drawSummary();
    drawLines();
    if (clientsChanged) refreshClients();
  } else if (event === 'event') {
    if (!page.events.some((e) => e.seq === data.seq)) page.events.push(data);
    page.events = page.events.slice(-500);
    drawEvents();
    // An assign, release or rebalance (from here or the CLI) moved clients between pools.
    if (data.kind === 'operator') refreshClients();
  } else if (event === 'sample') {
    for (const [name, sample] of Object.entries(data)) {
      const series = page.history[name] || (page.history[name] = []);
      series.push(sample);
      while (series.length > 0 && series[0].t < sample.t - HOUR_MS) series.shift();
    }
    drawLines();
    drawCharts();
  }
}

/** Follows the event stream, reconnecting (and reloading the overview) when it breaks, for as long as the page is open. */
async function follow() {
  for (let wait = 1000; ; wait = Math.min(wait * 2, 15_000)) {
    const connection = new AbortController();
    try {
      // The events after the overview's newest: none is lost in between.
      const after = page.events.at(-1)?.seq ?? 0;
      const response = await fetch(`/api/stream?after=${after}`, { headers: headers(), signal: connection.signal });
      if (response.status === 401) notice(TOKEN_NEEDED);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      $('live').textContent = 'live';
      $('live').classList.add('live');
      wait = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name && data) received(name, JSON.parse(data));
        }
      }
    } catch {
      // Reconnected below; the badge says so meanwhile.
    } finally {
      // Whatever broke the loop, the connection goes: a browser has only six per host.
      connection.abort();
    }
    $('live').textContent = 'reconnecting';
    $('live').classList.remove('live');
    await new Promise((resolve) => setTimeout(resolve, wait));
    await start().catch((error) => error.status === 401 && notice(TOKEN_NEEDED));
  }
}

async function start() {
  const overview = await api('/api/overview');
  page.status = overview.status;
  page.history = overview.history;
  page.events = overview.events;
  page.actions = overview.actions;
  for (const button of document.querySelectorAll('.action')) button.title = page.actions ? 'needs the token' : 'actions are off (web.token_file)';
  drawAll();
  drawEvents();
  refreshClients();
}

function main() {
  $('token').value = page.token;
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    page.token = $('token').value.trim();
    sessionStorage.setItem('dispatcher-token', page.token);
    notice('');
    start().then(
      () => void 0,
      (error) => notice(error.message),
    );
  });
  $('rebalance').addEventListener('click', () => act('/api/rebalance', {}).then((r) => r && notice(`rebalance: ${r.moves.length} clients moved`)));
  let typing = null;
  $('filter').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      page.filter = $('filter').value;
      page.offset = 0;
      refreshClients();
    }, 150);
  });
  for (const order of ['address', 'bytes']) {
    $(`by-${order}`).addEventListener('click', () => {
      page.order = order;
      page.offset = 0;
      refreshClients();
    });
  }
  // The bytes move on: the table of a page in view is read again now and then, unless the operator is using a row (a pin menu open).
  setInterval(() => {
    const inUse = $('clients').tBodies[0].contains(document.activeElement) && document.activeElement.tagName === 'SELECT';
    if (document.visibilityState === 'visible' && page.status && !inUse) refreshClients();
  }, CLIENTS_EVERY_MS);
  $('prev').addEventListener('click', () => {
    page.offset = Math.max(0, page.offset - 100);
    refreshClients();
  });
  $('next').addEventListener('click', () => {
    if (page.offset + 100 < page.matched) page.offset += 100;
    refreshClients();
  });
  $('explain-form').addEventListener('submit', (event) => {
    event.preventDefault();
    explain($('explain-ip').value.trim());
  });
  start().then(follow, (error) => {
    notice(error.status === 401 ? TOKEN_NEEDED : `cannot load: ${error.message}`);
    follow();
  });
}

main();
