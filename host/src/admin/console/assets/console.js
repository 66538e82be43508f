// The Sluice console: a small page over the admin JSON API (the one the CLI
// uses). No framework and no build step: the file is compiled into the
// binary as it is. Every value from the engine is put in the page as text,
// never as HTML: messages come from outside the hospital's control.

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
const TOKEN_KEY = 'sluice.admin-token';
const PAGE_SIZE = 50;
const OVERVIEW_POLL_MS = 2000;
const ANSWER_COLOURS = { AA: '#1a7f37', CA: '#4fa36a', AE: '#d98200', CE: '#f0b44c', AR: '#c0262d', CR: '#e06b70', none: '#7a8699', closed: '#5b2a86' };

class Unauthorized extends Error {}

// ---------------------------------------------------------------- API

async function api(path, { method = 'GET', body } = {}) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) throw new Unauthorized();
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text, keepLargeIntegers) : null; } catch { parsed = text; }
  if (!response.ok) throw new Error(parsed?.error ?? `${response.status} ${response.statusText}`);
  return parsed;
}

/** Journal IDs are 64-bit (`ms << 20 | n`), past what a JS number holds
 * exactly: such numbers are kept as their digits, read from the JSON text. */
function keepLargeIntegers(key, value, context) {
  return typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value) && context?.source ? context.source : value;
}

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key === 'className' ? 'class' : key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function link(href, ...children) {
  return h('a', { href, 'data-nav': true }, ...children);
}

function badge(text, kind = text) {
  return h('span', { class: `badge ${kind}` }, text);
}

function table(headings, rows, empty = 'None.') {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, headings.map((heading) => h('th', { class: heading.endsWith(' ') ? 'num' : null }, heading.trim())))),
    h('tbody', {}, rows));
}

function num(value) {
  return h('td', { class: 'num' }, typeof value === 'number' ? value.toLocaleString('en') : value);
}

function pad(n, width = 2) {
  return String(n).padStart(width, '0');
}

/** Local time, `2026-12-01 14:03:07`. */
function time(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function ago(ms, now = Date.now()) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return time(ms);
}

function bytes(n) {
  if (n === null || n === undefined) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function notice(text, isError = false) {
  return h('p', { class: isError ? 'notice error' : 'notice', role: 'status' }, text);
}

/** Asks in a modal dialog; resolves to true when confirmed. */
function confirmAction(text, confirmLabel) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
  });
}

// ---------------------------------------------------------------- routing

let pageSeq = 0;
let stopPage = () => {};

/** True while the page numbered `seq` is still the one shown. */
function current(seq) {
  return seq === pageSeq;
}

async function route() {
  stopPage();
  stopPage = () => {};
  const seq = ++pageSeq;
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  let page = 'overview';
  let render;
  let match;
  if (path === '/' || path === '') {
    render = () => overviewPage(seq);
  } else if (path === '/messages') {
    page = 'messages';
    render = () => messagesPage(seq, params);
  } else if ((match = path.match(/^\/messages\/(\d+)$/))) {
    page = 'messages';
    render = () => messagePage(seq, match[1]);
  } else if (path === '/dead-letters') {
    page = 'dead-letters';
    render = () => deadLettersPage(seq, null, params);
  } else if ((match = path.match(/^\/dead-letters\/([^/]+)$/))) {
    page = 'dead-letters';
    render = () => deadLettersPage(seq, decodeURIComponent(match[1]), params);
  } else {
    render = async () => main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', link('/', 'Overview')));
  }
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('current', a.dataset.page === page);
  showTokenControl();
  try {
    await render();
  } catch (err) {
    if (!current(seq)) return;
    if (err instanceof Unauthorized) askForToken();
    else main.replaceChildren(h('h1', {}, 'Something went wrong'), notice(err.message, true));
  }
}

function go(url) {
  history.pushState(null, '', url);
  route();
}

document.addEventListener('click', (event) => {
  const a = event.target.closest('a[data-nav]');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', route);

// ---------------------------------------------------------------- token

function askForToken() {
  const refused = sessionStorage.getItem(TOKEN_KEY) !== null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopPage();
  statusLine.replaceChildren();
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', required: true, 'aria-label': 'Admin token' });
  const form = h('form', { id: 'token-form' }, input, h('button', { type: 'submit', class: 'primary' }, 'Continue'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    route();
  });
  main.replaceChildren(h('section', { class: 'token' },
    h('h1', {}, 'Admin token'),
    h('p', {}, 'This engine needs its admin token (', h('code', {}, 'admin.token'), ') to show its data. It is kept for this browser tab only.'),
    refused && notice('That token was refused.', true),
    form));
  input.focus();
}

function showTokenControl() {
  if (sessionStorage.getItem(TOKEN_KEY) === null) return;
  const forget = h('button', { type: 'button', id: 'forget-token' }, 'Forget token');
  forget.addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); route(); });
  statusLine.replaceChildren(forget);
}

// ---------------------------------------------------------------- overview

async function overviewPage(seq) {
  const live = h('div', {});
  main.replaceChildren(h('h1', {}, 'Overview'), live);
  let timer;
  stopPage = () => clearTimeout(timer);
  const refresh = async () => {
    try {
      const data = await api('/api/overview');
      if (!current(seq)) return;
      live.replaceChildren(...overview(data));
    } catch (err) {
      if (!current(seq)) return;
      if (err instanceof Unauthorized) { askForToken(); return; }
      live.prepend(notice(`Not updated: ${err.message}`, true));
    }
    if (current(seq)) timer = setTimeout(refresh, OVERVIEW_POLL_MS);
  };
  // The first answer is awaited, so a refused token shows the token form at once.
  const first = await api('/api/overview');
  if (!current(seq)) return;
  live.replaceChildren(...overview(first));
  timer = setTimeout(refresh, OVERVIEW_POLL_MS);
}

function overview(data) {
  const series = data.answers.answers;
  const sum = (values, last = values.length) => values.slice(values.length - last).reduce((a, b) => a + b, 0);
  const received = data.interfaces.reduce((total, i) => total + Object.values(i.senders).reduce((t, s) => t + Object.values(s.messages).reduce((a, b) => a + b, 0), 0), 0);
  const lastMinute = Object.values(series).reduce((total, values) => total + sum(values, 60), 0);
  const refused = ['AE', 'AR', 'CE', 'CR', 'closed'].reduce((total, code) => total + sum(series[code] ?? []), 0);
  const open = data.interfaces.reduce((total, i) => total + i.connections_open, 0);
  const backlog = data.connectors.reduce((total, c) => total + c.outbox, 0);
  const dead = data.connectors.reduce((total, c) => total + c.dead_letter, 0);
  const stat = (id, value, label) => h('div', { class: 'stat', id }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
  return [
    h('div', { class: 'stats' },
      stat('stat-received', received.toLocaleString('en'), 'messages received since start'),
      stat('stat-rate', (lastMinute / 60).toFixed(1), 'messages/s, last minute'),
      stat('stat-refused', refused.toLocaleString('en'), 'not accepted, last 15 min'),
      stat('stat-connections', open.toLocaleString('en'), 'open connections'),
      stat('stat-backlog', backlog.toLocaleString('en'), 'waiting in outboxes'),
      stat('stat-dead', dead.toLocaleString('en'), 'dead letters'),
      stat('stat-ready', data.ready ? badge('ready') : badge('not ready', 'not-ready'), data.not_ready_because ?? `journal ${bytes(data.journal_bytes)}`)),
    h('h2', {}, 'Messages per second by answer, last 15 minutes'),
    h('div', { class: 'panel chart', id: 'chart' }, chart(data.answers)),
    h('h2', {}, 'Connectors'),
    connectorsTable(data.connectors, data.now_ms),
    h('h2', {}, 'Interfaces'),
    interfacesTable(data.interfaces, data.now_ms),
    h('h2', {}, 'Open connections'),
    connectionsTable(data.interfaces, data.now_ms),
    h('h2', {}, 'Plugins'),
    pluginsTable(data.plugins),
    h('p', { class: 'muted' }, `Updated ${time(data.now_ms)}; refreshed every ${OVERVIEW_POLL_MS / 1000} s.`),
  ];
}

function chart(answers) {
  const width = 900;
  const height = 200;
  const shown = Object.entries(answers.answers).filter(([, values]) => values.some((v) => v > 0));
  const max = Math.max(1, ...shown.flatMap(([, values]) => values));
  // Drawn stretched to the panel's width; the labels are HTML, so they are not stretched with it.
  const drawing = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'messages per second by answer' },
    svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: '#d9dde5', 'vector-effect': 'non-scaling-stroke' }));
  for (const [code, values] of shown) {
    const offset = width - values.length;
    const points = values.map((v, i) => `${offset + i},${(height - 1 - (v / max) * (height - 4)).toFixed(1)}`).join(' ');
    drawing.append(svg('polyline', { points, fill: 'none', stroke: ANSWER_COLOURS[code] ?? '#333', 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke', 'data-answer': code }));
  }
  const legend = h('div', { class: 'legend' }, Object.entries(answers.answers).map(([code, values]) => {
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = ANSWER_COLOURS[code] ?? '#333';
    return h('span', { 'data-answer': code }, swatch, `${code} ${values.reduce((a, b) => a + b, 0).toLocaleString('en')}`);
  }));
  return [
    h('div', { class: 'axis' }, h('span', {}, `peak ${max}/s`)),
    drawing,
    h('div', { class: 'axis' }, h('span', {}, '15 min ago'), h('span', {}, 'now')),
    shown.length === 0 ? h('p', { class: 'muted' }, 'No messages in the last 15 minutes.') : null,
    legend,
  ];
}

function connectorsTable(connectors, now) {
  return h('div', { id: 'connectors' }, table(['Connector', 'Outbox ', 'Dead letters ', 'Delivered ', 'Per second ', 'Last delivered', 'Last error'],
    connectors.map((c) => h('tr', { 'data-connector': c.connector },
      h('td', {}, c.connector),
      num(c.outbox),
      h('td', { class: 'num' }, c.dead_letter > 0 ? link(`/dead-letters/${encodeURIComponent(c.connector)}`, c.dead_letter.toLocaleString('en')) : '0'),
      num(c.delivered),
      num(c.delivered_per_second.toFixed(1)),
      h('td', {}, ago(c.last_delivered_ms, now)),
      h('td', { class: 'wrap' }, c.last_error ? [h('span', { class: 'error' }, c.last_error), ` (${ago(c.last_error_ms, now)})`] : ''))),
  'No connectors configured.'));
}

function interfacesTable(interfaces, now) {
  return h('div', { id: 'interfaces' }, table(['Interface', 'Listening on', 'ACK mode', 'Validators', 'Connectors', 'Connections ', 'Messages ', 'Last message'],
    interfaces.map((i) => {
      const messages = Object.values(i.senders).reduce((t, s) => t + Object.values(s.messages).reduce((a, b) => a + b, 0), 0);
      return h('tr', { 'data-interface': i.name },
        h('td', {}, i.name),
        h('td', {}, i.listeners.map((l) => `${l.addr}${l.tls ? ' (TLS)' : ''}`).join(', ')),
        h('td', {}, i.ack_mode),
        h('td', {}, i.validators.join(', ')),
        h('td', {}, i.connectors.join(', ')),
        num(i.connections_open),
        num(messages),
        h('td', {}, ago(i.last_message_ms, now)));
    }),
  'No interfaces.'));
}

function connectionsTable(interfaces, now) {
  const rows = interfaces.flatMap((i) => i.connections.map((c) => h('tr', {},
    h('td', {}, i.name), h('td', {}, c.peer), h('td', {}, c.tls ? 'TLS' : 'plain'), h('td', {}, ago(c.connected_at_ms, now)), num(c.messages))));
  const hidden = interfaces.reduce((total, i) => total + i.connections_open - i.connections.length, 0);
  return h('div', { id: 'connections' }, table(['Interface', 'Peer', 'Transport', 'Connected', 'Messages '], rows, 'No open connections.'),
    hidden > 0 ? h('p', { class: 'muted' }, `and ${hidden} more`) : null);
}

function pluginsTable(plugins) {
  return h('div', { id: 'plugins' }, table(['Plugin', 'World', 'State', 'Origin', 'Last load error'],
    plugins.map((p) => h('tr', { 'data-plugin': p.name },
      h('td', {}, p.name), h('td', {}, p.world), h('td', {}, badge(p.state)), h('td', { class: 'wrap' }, p.origin),
      h('td', { class: 'wrap error' }, p.last_error ?? ''))),
  'No plugins.'));
}

// ---------------------------------------------------------------- messages

const FILTERS = [
  { name: 'control_id', label: 'Control ID (MSH-10)' },
  { name: 'patient', label: 'Patient ID (PID-3.1)' },
  { name: 'type', label: 'Type', placeholder: 'ADT^A01 or ADT' },
  { name: 'sender', label: 'Sender', placeholder: 'APP^FAC or APP' },
  { name: 'ack', label: 'Answer', options: ['', 'AA', 'AE', 'AR', 'CA', 'CE', 'CR', 'none', 'closed'] },
  { name: 'state', label: 'State on a connector', options: ['', 'queued', 'delivered', 'dead'] },
  { name: 'from', label: 'Received from', type: 'datetime-local' },
  { name: 'to', label: 'Received to', type: 'datetime-local' },
];

async function messagesPage(seq, params) {
  const form = h('form', { class: 'search', id: 'search', action: '/messages' },
    FILTERS.map((f) => h('label', {}, f.label, f.options
      ? h('select', { name: f.name }, f.options.map((o) => h('option', { value: o, selected: params.get(f.name) === o }, o || 'any')))
      : h('input', { name: f.name, type: f.type ?? 'text', placeholder: f.placeholder, value: params.get(f.name) ?? '', step: f.type ? 1 : null }))),
    h('button', { type: 'submit', class: 'primary' }, 'Search'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (String(value).trim()) query.set(name, String(value).trim());
    go(query.size ? `/messages?${query}` : '/messages');
  });
  const results = h('div', { id: 'results' }, h('p', { class: 'muted' }, 'Searching…'));
  main.replaceChildren(h('h1', {}, 'Messages'), form, results);

  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const name of ['control_id', 'patient', 'type', 'sender', 'ack', 'state', 'before']) if (params.get(name)) query.set(name, params.get(name));
  for (const [name, api_name] of [['from', 'from_ms'], ['to', 'to_ms']]) {
    if (!params.get(name)) continue;
    const ms = new Date(params.get(name)).getTime();
    if (Number.isNaN(ms)) { results.replaceChildren(notice(`"${params.get(name)}" is not a date and time.`, true)); return; }
    // A time without seconds covers its whole minute.
    const span = params.get(name).length <= 16 ? 59_999 : 999;
    query.set(api_name, String(name === 'to' ? ms + span : ms));
  }
  let found;
  try {
    found = await api(`/api/messages?${query}`);
  } catch (err) {
    if (err instanceof Unauthorized) throw err;
    if (current(seq)) results.replaceChildren(notice(err.message, true));
    return;
  }
  if (!current(seq)) return;
  const rows = found.messages.map((m) => h('tr', { 'data-id': m.id },
    h('td', {}, time(m.received_at_ms)),
    h('td', {}, link(`/messages/${m.id}`, m.control_id || '(none)')),
    h('td', {}, m.message_type),
    h('td', {}, `${m.sending_application}^${m.sending_facility}`),
    h('td', {}, m.patient_id),
    h('td', {}, m.interface),
    h('td', {}, badge(m.ack_code)),
    h('td', {}, Object.entries(m.states).map(([connector, state]) => badge(`${connector}: ${state}`, state)))));
  const pager = h('div', { class: 'pager' });
  if (params.get('before')) {
    const newest = new URLSearchParams(params);
    newest.delete('before');
    pager.append(link(newest.size ? `/messages?${newest}` : '/messages', '← Newest'));
  }
  if (found.next) {
    const older = new URLSearchParams(params);
    older.set('before', String(found.next));
    pager.append(link(`/messages?${older}`, 'Older →'));
  }
  results.replaceChildren(
    table(['Received', 'Control ID', 'Type', 'Sender', 'Patient', 'Interface', 'Answer', 'Connectors'], rows, 'No message matches.'),
    pager);
}

async function messagePage(seq, id) {
  const shown = await api(`/api/messages/${id}`);
  if (!current(seq)) return;
  const facts = [
    ['Control ID', shown.control_id], ['Type', shown.message_type], ['Sender', `${shown.sending_application}^${shown.sending_facility}`],
    ['Patient ID', shown.patient_id], ['Received', time(shown.received_at_ms)], ['Interface', shown.interface], ['Peer', shown.peer],
    ['Size', bytes(shown.size)], ['Answer', badge(shown.ack_code)], ['Reason', shown.reason],
    ['Duplicate of', shown.duplicate_of ? link(`/messages/${shown.duplicate_of}`, String(shown.duplicate_of)) : null],
    ['Connectors', Object.entries(shown.states).map(([connector, state]) => badge(`${connector}: ${state}`, state))],
  ].filter(([, value]) => value !== null && value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0));
  const notices = h('div', { id: 'notices' });
  main.replaceChildren(
    h('h1', {}, `Message ${shown.control_id || shown.id}`),
    notices,
    h('div', { class: 'columns' },
      h('div', {},
        h('h2', {}, 'Segments'),
        shown.raw === null || shown.raw === undefined
          ? h('p', { class: 'muted' }, 'The message body is no longer kept (journal.retention).')
          : h('div', { id: 'segments' }, segmentsView(shown.raw)),
        h('h2', {}, 'Raw message'),
        h('pre', { id: 'raw' }, (shown.raw ?? '').replace(/\r\n?/g, '\n')),
        h('h2', {}, 'ACK sent'),
        shown.ack ? h('pre', { id: 'ack' }, shown.ack.replace(/\r\n?/g, '\n')) : h('p', { class: 'muted' }, 'None.')),
      h('div', {},
        h('h2', {}, 'Facts'),
        h('dl', { class: 'facts' }, facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
        h('h2', {}, 'History'),
        h('div', { id: 'history' }, table(['Time', 'Connector', 'Event', 'Attempt ', 'Detail', 'By'],
          timeline(shown).map((e) => h('tr', { 'data-event': e.event, 'data-connector': e.connector },
            h('td', {}, time(e.at_ms)), h('td', {}, e.connector), h('td', {}, badge(e.event)),
            num(e.attempt ?? ''), h('td', { class: 'wrap' }, e.detail ?? ''), h('td', {}, e.by ?? ''))))),
        shown.raw ? resendForm(shown, notices) : null)));
}

/** Each connector's history: queued with the message's durable write (the
 * journal record names them, so no event is stored for it), then its events. */
function timeline(shown) {
  const queued = (shown.connectors ?? []).map((connector) => ({ at_ms: shown.received_at_ms, connector, event: 'queued' }));
  const received = { at_ms: shown.received_at_ms, connector: '', event: 'received', detail: `answered ${shown.ack_code}${shown.reason ? `: ${shown.reason}` : ''}` };
  return [received, ...queued, ...shown.events];
}

function resendForm(shown, notices) {
  const select = h('select', { name: 'connector', id: 'resend-connector' });
  const form = h('form', { class: 'actions', id: 'resend' }, 'Queue again on', select, h('button', { type: 'submit' }, 'Resend…'));
  api('/api/outbox').then(({ connectors }) => {
    select.replaceChildren(...connectors.map((c) => h('option', { value: c.connector }, c.connector)));
  }).catch(() => {});
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const connector = select.value;
    if (!connector || !(await confirmAction(`Send message ${shown.control_id} to ${connector} again?`, 'Resend'))) return;
    try {
      const done = await api(`/api/messages/${shown.id}/resend`, { method: 'POST', body: { connector } });
      notices.replaceChildren(notice(`Queued again on ${done.connector}.`));
    } catch (err) {
      if (err instanceof Unauthorized) { askForToken(); return; }
      notices.replaceChildren(notice(err.message, true));
    }
  });
  return [h('h2', {}, 'Resend'), form];
}

// ---------------------------------------------------------------- segments

/** The message's segments, each field numbered as plugins name it (`PID-5.1`, `OBX[2]-5`). */
function segmentsView(raw) {
  const lines = raw.split(/\r\n|\r|\n/).filter((line) => line.length > 0);
  const header = lines[0] ?? '';
  if (!/^(MSH|FHS|BHS)/.test(header) || header.length < 8) return h('p', { class: 'muted' }, 'Not an HL7 v2 message with a header segment.');
  const fieldSep = header[3];
  const encoding = header.slice(4).split(fieldSep)[0];
  const [component = '^', repetition = '~', escape = '\\', subcomponent = '&'] = encoding;
  const seen = new Map();
  return lines.map((line) => {
    const name = line.slice(0, 3);
    const occurrence = (seen.get(name) ?? 0) + 1;
    seen.set(name, occurrence);
    const segment = occurrence > 1 ? `${name}[${occurrence}]` : name;
    const parts = line.split(fieldSep);
    const isHeader = /^(MSH|FHS|BHS)$/.test(name);
    // MSH-1 is the field separator itself and MSH-2 the encoding characters, which are never split.
    const fields = isHeader ? [fieldSep, ...parts.slice(1)] : parts.slice(1);
    const rows = [];
    fields.forEach((value, index) => {
      if (value === '') return;
      const field = `${segment}-${index + 1}`;
      const literal = isHeader && index < 2;
      rows.push(h('tr', { 'data-field': field },
        h('th', { class: 'field', scope: 'row' }, field),
        h('td', {}, literal ? h('span', { class: 'part', title: field }, value) : fieldView(field, value, { component, repetition, escape, subcomponent, fieldSep }))));
    });
    return h('section', { class: 'segment', 'data-segment': segment },
      h('h3', {}, segment),
      rows.length ? h('table', {}, h('tbody', {}, rows)) : h('p', { class: 'muted' }, 'No fields.'));
  });
}

function fieldView(field, value, seps) {
  const out = [];
  value.split(seps.repetition).forEach((rep, r) => {
    if (r > 0) out.push(h('span', { class: 'sep' }, seps.repetition));
    const base = r > 0 ? `${field}[${r + 1}]` : field;
    const components = rep.split(seps.component);
    components.forEach((comp, c) => {
      if (c > 0) out.push(h('span', { class: 'sep' }, seps.component));
      const subs = comp.split(seps.subcomponent);
      subs.forEach((sub, s) => {
        if (s > 0) out.push(h('span', { class: 'sep' }, seps.subcomponent));
        if (sub === '') return;
        const path = components.length === 1 && subs.length === 1 ? base : subs.length === 1 ? `${base}.${c + 1}` : `${base}.${c + 1}.${s + 1}`;
        out.push(h('span', { class: 'part', title: path, 'data-path': path }, unescape(sub, seps)));
      });
    });
  });
  return out;
}

/** HL7 escapes of the delimiters (chapter 2.7); other escapes stay as they are. */
function unescape(text, seps) {
  const e = seps.escape;
  if (!e || !text.includes(e)) return text;
  const named = { F: seps.fieldSep, S: seps.component, T: seps.subcomponent, R: seps.repetition, E: e };
  const pattern = new RegExp(`${regexQuote(e)}([FSTRE])${regexQuote(e)}`, 'g');
  return text.replace(pattern, (_, code) => named[code]);
}

function regexQuote(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------- dead letters

async function deadLettersPage(seq, connector, params, message = null) {
  const { connectors } = await api('/api/outbox');
  if (!current(seq)) return;
  if (connectors.length === 0) {
    main.replaceChildren(h('h1', {}, 'Dead letters'), h('p', { class: 'muted' }, 'No connectors configured.'));
    return;
  }
  if (connector === null) {
    connector = (connectors.find((c) => c.dead_letter > 0) ?? connectors[0]).connector;
    history.replaceState(null, '', `/dead-letters/${encodeURIComponent(connector)}`);
  }
  const depth = connectors.find((c) => c.connector === connector);
  if (!depth) {
    main.replaceChildren(h('h1', {}, 'Dead letters'), notice(`No connector named ${connector}.`, true));
    return;
  }
  const after = params.get('after');
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (after) query.set('after', after);
  const letters = await api(`/api/dlq/${encodeURIComponent(connector)}?${query}`);
  if (!current(seq)) return;
  const rerender = (text = null, isError = false) => deadLettersPage(seq, connector, params, text && [text, isError]).catch((err) => {
    if (err instanceof Unauthorized) askForToken(); else main.prepend(notice(err.message, true));
  });
  const act = async (action, selection, question, label) => {
    if (!(await confirmAction(question, label))) return;
    try {
      const done = await api(`/api/dlq/${encodeURIComponent(connector)}/${action}`, { method: 'POST', body: selection });
      const count = done.replayed ?? done.purged ?? 0;
      rerender(`${action === 'replay' ? 'Replayed' : 'Purged'} ${count} dead letter${count === 1 ? '' : 's'} of ${connector}.`);
    } catch (err) {
      if (err instanceof Unauthorized) { askForToken(); return; }
      rerender(err.message, true);
    }
  };
  const rows = letters.map((d) => h('tr', { 'data-id': d.id },
    num(d.id),
    h('td', {}, d.journal_id ? link(`/messages/${d.journal_id}`, d.control_id) : d.control_id),
    h('td', {}, d.message_type),
    h('td', {}, `${d.sending_application}^${d.sending_facility}`),
    num(d.attempts),
    h('td', { class: 'wrap error' }, d.error),
    h('td', {}, time(d.dead_at_ms)),
    h('td', {},
      actionButton('Replay', 'replay', () => act('replay', { id: d.id }, `Replay dead letter ${d.id} (${d.control_id}) of ${connector}? It goes back to the end of the outbox.`, 'Replay')),
      ' ',
      actionButton('Purge', 'purge', () => act('purge', { id: d.id }, `Purge dead letter ${d.id} (${d.control_id}) of ${connector}? It is deleted for good.`, 'Purge'), 'danger'))));
  const pager = h('div', { class: 'pager' });
  if (after) pager.append(link(`/dead-letters/${encodeURIComponent(connector)}`, '← First page'));
  if (letters.length === PAGE_SIZE) pager.append(link(`/dead-letters/${encodeURIComponent(connector)}?after=${letters[letters.length - 1].id}`, 'Next page →'));
  main.replaceChildren(
    h('h1', {}, 'Dead letters'),
    h('div', { class: 'tabs' }, connectors.map((c) => h('a', { href: `/dead-letters/${encodeURIComponent(c.connector)}`, 'data-nav': true, class: c.connector === connector ? 'current' : null }, `${c.connector} (${c.dead_letter})`))),
    message ? notice(message[0], message[1]) : null,
    h('div', { class: 'actions' },
      h('span', {}, `${depth.dead_letter.toLocaleString('en')} dead letter${depth.dead_letter === 1 ? '' : 's'} in ${connector}; ${depth.outbox.toLocaleString('en')} waiting in its outbox.`),
      actionButton('Replay all', 'replay-all', () => act('replay', { all: true }, `Replay all ${depth.dead_letter} dead letters of ${connector}?`, 'Replay all'), null, depth.dead_letter === 0),
      actionButton('Purge all', 'purge-all', () => act('purge', { all: true }, `Purge all ${depth.dead_letter} dead letters of ${connector}? They are deleted for good.`, 'Purge all'), 'danger', depth.dead_letter === 0),
      actionButton('Refresh', 'refresh', () => rerender())),
    h('div', { id: 'dead-letters' }, table(['ID ', 'Control ID', 'Type', 'Sender', 'Attempts ', 'Last error', 'Dead since', ''], rows, 'No dead letters.')),
    pager);
}

function actionButton(text, action, onclick, cls = null, disabled = false) {
  return h('button', { type: 'button', class: cls, 'data-action': action, onclick, disabled }, text);
}

route();
