// The server page's "Move to another node" (Settings tab): starts a move
// (POST /v1/instances/{id}/migrate), can cancel it before its switch, and follows it from
// the event stream (`live:migration`, see live.js): its state, the bytes copied, and the
// reason when it failed. Once it completed the page is loaded again (the server's node
// changed).

const version = new URL(import.meta.url).search;
const { call, instancePath, formatBytes } = await import(`./http.js${version}`);
const { ask } = await import(`./dialog.js${version}`);

const root = document.getElementById('instance');
const id = root.dataset.instanceId;
const form = document.getElementById('migrate-form');
const select = document.getElementById('migrate-target');
const start = document.getElementById('migrate-start');
const cancel = document.getElementById('migrate-cancel');
const status = document.getElementById('migrate-status');
const OPEN = ['queued', 'copying', 'final_sync', 'switching'];
const SAID = {
  queued: 'queued',
  copying: 'copying the files while the server keeps running',
  final_sync: 'the server is stopped for the final pass',
  switching: 'switching to the new node',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};
let current = null;

function nodeName(nodeId) {
  const option = [...select.options].find((o) => o.value === nodeId);
  return option ? option.dataset.name : nodeId;
}

function show(m) {
  current = m;
  const open = OPEN.includes(m.state);
  const bytes = m.bytes_copied > 0 ? `, ${formatBytes(m.bytes_copied)} copied` : '';
  const reason = m.reason ? `: ${m.reason}` : '';
  status.textContent = `Move to ${nodeName(m.target_node_id)}: ${SAID[m.state] || m.state}${bytes}${reason}.`;
  status.dataset.state = m.state;
  start.disabled = open;
  cancel.hidden = !open || m.state === 'switching';
  if (m.state === 'completed') {
    status.textContent += ' Loading the page again…';
    setTimeout(() => window.location.reload(), 1500);
  }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const target = select.value;
  const answer = await ask({
    title: 'Move this server?',
    text: `The files are copied to ${target ? nodeName(target) : 'the best-fitting node'} while the server runs; then it stops for a final pass and starts again there. Nothing changes on this node until the switch.`,
    ok: 'Move',
  });
  if (!answer.ok) return;
  try {
    const answer = await call('POST', instancePath(id, '/migrate'), { json: target ? { target_node_id: target } : {} });
    // A quick move may already have told its later states on the event stream.
    if (!current || current.id !== answer.id) show(answer);
  } catch (e) {
    status.textContent = `Could not move the server: ${e.message}${e.code ? ` (${e.code})` : ''}`;
  }
});

cancel.addEventListener('click', async () => {
  if (!current) return;
  try {
    show(await call('POST', `/v1/migrations/${encodeURIComponent(current.id)}/cancel`, { json: {} }));
  } catch (e) {
    status.textContent = `Could not cancel: ${e.message}${e.code ? ` (${e.code})` : ''}`;
  }
});

document.addEventListener('live:migration', (e) => {
  const m = e.detail;
  if (m.instance_id !== id) return;
  show({ ...current, ...m, id: m.migration_id });
});

try {
  const answer = await call('GET', `/v1/migrations?instance_id=${encodeURIComponent(id)}`);
  const last = (answer.data || [])[0];
  if (last && (OPEN.includes(last.state) || last.state === 'failed')) show(last);
} catch (e) {
  status.textContent = `Could not read the moves of this server: ${e.message}`;
}
