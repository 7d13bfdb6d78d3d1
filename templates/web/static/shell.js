// The node page's shell: "Open SSH" or "Open terminal" buys a single-use ticket
// (POST /v1/nodes/{id}/ssh/tickets or .../terminal/tickets), opens the socket it names
// and runs an xterm.js terminal on it. Keystrokes go as binary messages, the terminal's
// size as {"type":"resize"} text messages (it follows the window), output is written to
// the terminal; the status line says who is connected and, at the end, the exit status
// or the error. When the socket closes the recordings list is read again.

const version = new URL(import.meta.url).search;
const { call } = await import(`./http.js${version}`);
const { openTerminal } = await import(`./term.js${version}`);

const root = document.getElementById('shell');
const nodeId = root.dataset.nodeId;
const box = document.getElementById('shell-term');
const statusLine = document.getElementById('shell-status');
const openSsh = document.getElementById('shell-ssh');
const openTerm = document.getElementById('shell-terminal');
const login = document.getElementById('shell-login');
const closeButton = document.getElementById('shell-close');

/** The session under way: `{ ws, view, ended }`. */
let current = null;
/** The terminal on screen (the current session's, or the last one's). */
let shown = null;
const encoder = new TextEncoder();

function setStatus(text, state) {
  statusLine.textContent = text;
  root.dataset.state = state;
}

function setBusy(busy) {
  for (const b of [openSsh, openTerm]) if (b) b.disabled = busy;
  if (login) login.disabled = busy;
  closeButton.hidden = !busy;
}

/** Reads the node page again and puts its recordings section in place of ours. */
async function refreshRecordings() {
  const section = document.getElementById('recordings');
  if (!section) return;
  try {
    const r = await fetch(location.href, { credentials: 'same-origin' });
    if (!r.ok) return;
    const page = new DOMParser().parseFromString(await r.text(), 'text/html');
    const fresh = page.getElementById('recordings');
    if (fresh) section.replaceChildren(...fresh.childNodes);
  } catch { /* the list stays as it was */ }
}

function onControl(session, text) {
  let m;
  try { m = JSON.parse(text); } catch { return; }
  switch (m.type) {
    case 'session':
      root.dataset.session = m.id;
      break;
    case 'ready':
      setStatus(m.user ? `Connected as ${m.user}` : 'Connected', 'open');
      break;
    case 'notice':
      session.view.term.writeln(`\r\n[Shardlyn] ${m.message}`);
      break;
    case 'exit':
      session.ended = true;
      root.dataset.exit = String(m.status);
      setStatus(`The session ended with exit status ${m.status}.`, 'ended');
      break;
    case 'error':
      session.ended = true;
      setStatus(`The session ended with an error: ${m.message}`, 'error');
      break;
    default:
      break;
  }
}

function sendBytes(session, bytes) {
  if (session.ws.readyState === WebSocket.OPEN) session.ws.send(bytes);
}

async function open(kind) {
  setBusy(true);
  delete root.dataset.exit;
  delete root.dataset.session;
  setStatus('Connecting…', 'connecting');
  box.hidden = false;
  const view = openTerminal(box, { cursorBlink: true }, true);
  shown = view;
  // Tests (and the browser's console) read the screen from here.
  box.terminal = view.term;
  const session = { ws: null, view, ended: false };
  current = session;
  let url;
  try {
    const ticket = await call('POST', `/v1/nodes/${encodeURIComponent(nodeId)}/${kind}/tickets`, { json: {} });
    const q = new URLSearchParams({ cols: String(view.term.cols), rows: String(view.term.rows) });
    if (kind === 'ssh') q.set('login', (login && login.value.trim()) || 'shardlyn');
    url = `${ticket.url}&${q}`;
  } catch (e) {
    setStatus(`The session could not start: ${e.message}`, 'error');
    finish(session);
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}${url}`);
  ws.binaryType = 'arraybuffer';
  session.ws = ws;
  ws.addEventListener('open', () => {
    setStatus('Connected', 'open');
    view.term.focus();
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data === 'string') onControl(session, ev.data);
    else view.term.write(new Uint8Array(ev.data));
  });
  ws.addEventListener('close', () => {
    if (!session.ended) setStatus('The connection closed.', 'closed');
    finish(session);
    refreshRecordings();
  });
  view.term.onData((data) => sendBytes(session, encoder.encode(data)));
  // Mouse reports of old encodings: one byte per character.
  view.term.onBinary((data) => sendBytes(session, Uint8Array.from(data, (c) => c.charCodeAt(0) & 255)));
  view.term.onResize(({ cols, rows }) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  });
}

/** The session is over: its terminal stays on screen, read-only, until the next one. */
function finish(session) {
  if (current !== session) return;
  current = null;
  session.view.term.options.disableStdin = true;
  session.view.term.options.cursorBlink = false;
  setBusy(false);
}

function start(kind) {
  if (current) return;
  if (shown) {
    shown.dispose();
    box.replaceChildren();
    shown = null;
  }
  open(kind);
}

if (openSsh) openSsh.addEventListener('click', () => start('ssh'));
if (openTerm) openTerm.addEventListener('click', () => start('terminal'));
// The buttons are disabled in the page until here: a click before this script listens
// would do nothing.
setBusy(false);
closeButton.addEventListener('click', () => {
  if (current && current.ws) current.ws.close(1000, 'closed');
  else if (current) finish(current);
});
window.addEventListener('resize', () => {
  if (current && current.view.fit) current.view.fit.fit();
});
