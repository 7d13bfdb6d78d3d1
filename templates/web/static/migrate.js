// The server page's "Move to another node" (Settings tab): starts a move
// (POST /v1/instances/{id}/migrate), can cancel it before its switch, and follows it from
// the event stream (`live:migration`, see live.js): its state, the bytes copied, and the
// reason when it failed. Once it completed the page is loaded again (the server's node
// changed).

const version = new URL(import.meta.url).search;
const { call, instancePath, formatBytes, formatTime } = await import(`./http.js${version}`);
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

// A move only goes forward: an answer read before a later event must not take it back.
const step = (state) => ({ queued: 0, copying: 1, final_sync: 2, switching: 3 })[state] ?? 4;

function show(m) {
  if (current && current.id === m.id && step(current.state) > step(m.state)) return;
  current = m;
  const open = OPEN.includes(m.state);
  const bytes = m.bytes_copied > 0 ? `, ${formatBytes(m.bytes_copied)} copied` : '';
  const resumed = m.resumes > 0 ? `, resumed ${m.resumes} time${m.resumes > 1 ? 's' : ''} after a cut` : '';
  const backup = m.from_backup ? ` (rebuilt from the backup of ${formatTime(m.from_backup.taken_at)})` : '';
  const reason = m.reason ? `: ${m.reason}` : '';
  status.textContent = `Move to ${nodeName(m.target_node_id)}${backup}: ${SAID[m.state] || m.state}${bytes}${resumed}${reason}.`;
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
  const body = target ? { target_node_id: target } : {};
  try {
    await begin(body);
  } catch (e) {
    // The server's node is offline: the answer names the age of the latest S3 backup,
    // what a rebuild from it would lose.
    if (e.code === 'NODE_OFFLINE' && /from_backup/.test(e.message)) {
      const rebuild = await ask({
        title: 'Rebuild from the latest backup?',
        text: `${e.message.replace(/: ask again.*$/, '')}. The server is rebuilt on ${target ? nodeName(target) : 'the best-fitting node'} from that backup: what changed since it was taken is lost, and the offline node forgets the server when it comes back.`,
        ok: 'Rebuild from the backup',
      });
      if (!rebuild.ok) return;
      try {
        await begin({ ...body, from_backup: true });
      } catch (e2) {
        status.textContent = `Could not rebuild the server: ${e2.message}${e2.code ? ` (${e2.code})` : ''}`;
      }
      return;
    }
    status.textContent = `Could not move the server: ${e.message}${e.code ? ` (${e.code})` : ''}`;
  }
});
// The button is disabled in the page until this script handles the form: a click
// before would submit it to the page itself, loading it again for nothing.
start.disabled = false;

async function begin(body) {
  const answer = await call('POST', instancePath(id, '/migrate'), { json: body });
  // A quick move may already have told its later states on the event stream: those
  // are kept, with what only the answer says (the backup it is rebuilt from).
  show(current && current.id === answer.id ? { ...answer, ...current } : answer);
}

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
