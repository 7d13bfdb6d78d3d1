// The instance page: a live console over the /v1 console WebSocket (Wings' event
// vocabulary), with ANSI colours, auto-scroll that stops while the reader scrolls up,
// command history, power buttons that follow the state, and live CPU, memory, network
// and disk with a small chart of CPU and memory.

// Imported with this module's version query, so each module is loaded once.
const version = new URL(import.meta.url).search;
const { api, accessToken } = await import(`./app.js${version}`);
const { render } = await import(`./ansi.js${version}`);

const root = document.getElementById('instance');
const id = root.dataset.instanceId;
const out = document.getElementById('console');
const statusText = document.getElementById('console-status');
const badge = document.getElementById('state');
const form = document.getElementById('command-form');
const input = document.getElementById('command');
const sendButton = document.getElementById('command-send');
const cpu = document.getElementById('stat-cpu');
const memory = document.getElementById('stat-memory');
const network = document.getElementById('stat-network');
const disk = document.getElementById('stat-disk');
const chart = document.getElementById('stat-chart');
/** The last 60 samples (5 minutes at one per 5 s) of CPU % and memory % of the limit. */
const samples = { cpu: [], memory: [] };
const HISTORY = 60;
const powerButtons = [...document.querySelectorAll('[data-power]')];

const MAX_LINES = 5000;
const STATS_EVERY_MS = 5000;
const LIVE = ['starting', 'running', 'stopping'];
const ALLOWED = {
  start: (s) => s === 'offline' || s === 'install_failed',
  restart: (s) => s === 'running' || s === 'starting',
  stop: (s) => s === 'running' || s === 'starting',
  kill: (s) => LIVE.includes(s),
};

let state = root.dataset.state || 'offline';
let socket = null;
let connected = false;
let retries = 0;
let statsTimer = null;
const history = [];
let historyAt = 0;
let draft = '';

function setStatus(text) {
  statusText.textContent = text;
}

function refreshControls() {
  for (const b of powerButtons) b.disabled = !connected || !ALLOWED[b.dataset.power](state);
  input.disabled = !connected;
  sendButton.disabled = !connected;
}

function setState(next) {
  if (typeof next !== 'string' || next === '') return;
  state = next;
  root.dataset.state = next;
  badge.textContent = next;
  badge.className = `badge state-${next}`;
  refreshControls();
}

function atBottom() {
  return out.scrollHeight - out.scrollTop - out.clientHeight < 24;
}

function append(text, kind) {
  const follow = atBottom();
  const line = document.createElement('span');
  line.className = kind ? `line ${kind}` : 'line';
  line.append(render(String(text)));
  out.append(line);
  while (out.childElementCount > MAX_LINES) out.firstElementChild.remove();
  if (follow) out.scrollTop = out.scrollHeight;
}

function send(event, ...args) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ event, args }));
  }
}

function formatBytes(n) {
  if (!Number.isFinite(n) || n <= 0) return '0 MiB';
  const mib = n / (1024 * 1024);
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(1)} MiB`;
}

function showStats(raw) {
  let s;
  try { s = typeof raw === 'string' ? JSON.parse(raw) : raw; } catch { return; }
  if (!s || typeof s !== 'object') return;
  if (Number.isFinite(s.cpu_absolute)) cpu.textContent = `${s.cpu_absolute.toFixed(1)} %`;
  if (Number.isFinite(s.memory_bytes)) {
    const limit = Number.isFinite(s.memory_limit_bytes) && s.memory_limit_bytes > 0
      ? ` / ${formatBytes(s.memory_limit_bytes)}` : '';
    memory.textContent = `${formatBytes(s.memory_bytes)}${limit}`;
  }
  if (s.network && Number.isFinite(s.network.rx_bytes) && Number.isFinite(s.network.tx_bytes)) {
    network.textContent = `${formatBytes(s.network.rx_bytes)} / ${formatBytes(s.network.tx_bytes)}`;
  }
  if (Number.isFinite(s.disk_bytes)) disk.textContent = formatBytes(s.disk_bytes);
  if (Number.isFinite(s.cpu_absolute)) {
    const mem = s.memory_limit_bytes > 0 ? (100 * s.memory_bytes) / s.memory_limit_bytes : 0;
    remember(s.cpu_absolute, mem);
  }
  if (typeof s.state === 'string') setState(s.state);
}

function remember(cpuPercent, memoryPercent) {
  samples.cpu.push(cpuPercent);
  samples.memory.push(memoryPercent);
  if (samples.cpu.length > HISTORY) samples.cpu.shift();
  if (samples.memory.length > HISTORY) samples.memory.shift();
  drawChart();
}

/** Two lines on the canvas, scaled to the larger of 100 % and the highest CPU sample. */
function drawChart() {
  if (!chart || !chart.getContext) return;
  const ctx = chart.getContext('2d');
  const { width, height } = chart;
  ctx.clearRect(0, 0, width, height);
  const top = Math.max(100, ...samples.cpu);
  const style = getComputedStyle(chart);
  const line = (values, color) => {
    if (values.length < 2) return;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / (HISTORY - 1)) * width;
      const y = height - (Math.min(v, top) / top) * (height - 4) - 2;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  };
  line(samples.cpu, style.getPropertyValue('--chart-cpu').trim() || '#3b82f6');
  line(samples.memory, style.getPropertyValue('--chart-memory').trim() || '#10b981');
}

function pollStats() {
  clearInterval(statsTimer);
  statsTimer = setInterval(() => {
    if (connected && LIVE.includes(state)) send('send stats');
  }, STATS_EVERY_MS);
}

async function onEvent(message) {
  const [first] = message.args || [];
  switch (message.event) {
    case 'auth success':
      connected = true;
      retries = 0;
      setStatus('Connected');
      out.replaceChildren();
      refreshControls();
      send('send logs');
      if (LIVE.includes(state)) send('send stats');
      pollStats();
      break;
    case 'console output':
    case 'install output':
      append(first ?? '');
      break;
    case 'status':
      setState(first);
      if (LIVE.includes(state)) send('send stats');
      break;
    case 'stats':
      showStats(first);
      break;
    case 'daemon message':
      append(`[Shardlyn] ${first ?? ''}`, 'daemon');
      break;
    // A move to another node (Wings' names): its lines, and its state.
    case 'transfer logs':
      append(first ?? '', 'daemon');
      break;
    case 'transfer status':
      setStatus(`Moving to another node: ${(first ?? '').replace('_', ' ')}`);
      break;
    case 'daemon error':
    case 'jwt error':
      append(`[Shardlyn] ${first ?? 'error'}`, 'daemon-error');
      refreshControls();
      break;
    case 'token expiring':
      try { send('auth', await accessToken(true)); } catch { /* reconnects on expiry */ }
      break;
    default:
      break;
  }
}

function reconnectLater() {
  retries += 1;
  const delay = Math.min(30000, 500 * 2 ** Math.min(retries, 6)) * (0.75 + Math.random() / 2);
  setTimeout(connect, delay);
}

async function connect() {
  setStatus('Connecting…');
  let url;
  try {
    const ticket = await api('POST', `/v1/instances/${encodeURIComponent(id)}/console/tickets`, {});
    url = ticket.console_url;
  } catch (e) {
    setStatus(`The console is unavailable: ${e.message}`);
    reconnectLater();
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}${url}`);
  socket = ws;
  ws.addEventListener('message', (ev) => {
    let message;
    try { message = JSON.parse(ev.data); } catch { return; }
    onEvent(message);
  });
  ws.addEventListener('close', () => {
    if (socket !== ws) return;
    connected = false;
    refreshControls();
    setStatus('Disconnected; reconnecting…');
    reconnectLater();
  });
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const command = input.value;
  if (!connected || command.trim() === '') return;
  send('send command', command);
  if (history[history.length - 1] !== command) history.push(command);
  if (history.length > 100) history.shift();
  historyAt = history.length;
  draft = '';
  input.value = '';
});

input.addEventListener('keydown', (ev) => {
  if (ev.key === 'ArrowUp' && historyAt > 0) {
    if (historyAt === history.length) draft = input.value;
    historyAt -= 1;
    input.value = history[historyAt];
    ev.preventDefault();
  } else if (ev.key === 'ArrowDown' && historyAt < history.length) {
    historyAt += 1;
    input.value = historyAt === history.length ? draft : history[historyAt];
    ev.preventDefault();
  }
});

for (const button of powerButtons) {
  button.addEventListener('click', () => {
    send('set state', button.dataset.power);
    for (const b of powerButtons) b.disabled = true;
  });
}

refreshControls();
connect();
