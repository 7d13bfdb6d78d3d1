// The Backups tab: the list with each backup's state (a running one shows how long it
// has been running, read again every second until it ends), create, restore after a
// confirmation (optionally emptying the server first), download with progress, delete.

const version = new URL(import.meta.url).search;
const { call, instancePath, formatBytes, formatTime, download } = await import(`./http.js${version}`);
const { ask } = await import(`./dialog.js${version}`);

const POLL_MS = 1000;
const root = document.getElementById('instance');
const panel = document.getElementById('panel-backups');
const id = root.dataset.instanceId;
const canWrite = panel.dataset.canWrite === 'true';
const canRestore = panel.dataset.canRestore === 'true';
const tbody = document.querySelector('#backups tbody');
const status = document.getElementById('backups-status');
const form = document.getElementById('backup-form');
let timer = null;
let restoring = null;

function setStatus(text) {
  status.textContent = text;
}

function button(text, label, onClick, cls = 'secondary small') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

function elapsed(since) {
  const s = Math.max(0, Math.round((Date.now() - new Date(since).getTime()) / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function stateCell(b) {
  const td = document.createElement('td');
  const badge = document.createElement('span');
  badge.className = `badge backup-${b.status}`;
  badge.textContent = b.status;
  td.append(badge);
  if (b.status === 'pending' || b.status === 'running') {
    const bar = document.createElement('progress');
    bar.setAttribute('aria-label', `Backup ${b.name} in progress`);
    const text = document.createElement('span');
    text.className = 'muted small-text';
    text.textContent = ` ${b.status === 'pending' ? 'queued' : 'archiving'} for ${elapsed(b.created_at)}`;
    td.append(' ', bar, text);
  } else if (b.status === 'failed' && b.error) {
    const p = document.createElement('p');
    p.className = 'field-error';
    p.textContent = b.error;
    td.append(p);
  } else if (b.status === 'completed' && b.completed_at) {
    const text = document.createElement('span');
    text.className = 'muted small-text';
    const secs = Math.max(0, Math.round((new Date(b.completed_at) - new Date(b.created_at)) / 1000));
    text.textContent = ` in ${secs} s`;
    td.append(text);
  }
  return td;
}

function row(b) {
  const tr = document.createElement('tr');
  tr.dataset.id = b.id;
  tr.dataset.status = b.status;
  const name = document.createElement('td');
  name.textContent = b.name;
  if (b.locked) name.append(' ', Object.assign(document.createElement('span'), { className: 'badge', textContent: 'locked' }));
  const size = document.createElement('td');
  size.textContent = b.status === 'completed' ? formatBytes(b.size_bytes) : '–';
  const created = document.createElement('td');
  created.textContent = formatTime(b.created_at);
  const actions = document.createElement('td');
  actions.className = 'actions';
  if (b.status === 'completed') {
    actions.append(button('Download', `Download ${b.name}`, () => downloadBackup(b)));
    if (canRestore) actions.append(button('Restore', `Restore ${b.name}`, () => restore(b)));
  }
  if (canWrite && b.status !== 'pending' && b.status !== 'running') {
    actions.append(button('Delete', `Delete ${b.name}`, () => remove(b), 'danger small'));
  }
  tr.append(name, stateCell(b), size, created, actions);
  return tr;
}

async function load() {
  clearTimeout(timer);
  try {
    const answer = await call('GET', instancePath(id, '/backups'));
    const rows = answer.data || [];
    tbody.replaceChildren(...rows.map(row));
    if (rows.length === 0 && !status.textContent) setStatus('No backups yet.');
    if (rows.some((b) => b.status === 'pending' || b.status === 'running')) timer = setTimeout(load, POLL_MS);
  } catch (e) {
    setStatus(`Could not list backups: ${e.message}`);
    timer = setTimeout(load, POLL_MS * 5);
  }
}

async function create(ev) {
  ev.preventDefault();
  const input = document.getElementById('backup-name');
  const submit = document.getElementById('backup-create');
  submit.disabled = true;
  setStatus('Starting the backup…');
  try {
    const name = input.value.trim();
    const b = await call('POST', instancePath(id, '/backups'), { json: name ? { name } : {} });
    input.value = '';
    setStatus(`Backup ${b.name} started.`);
    await load();
  } catch (e) {
    setStatus(`Could not start a backup: ${e.message}${e.code ? ` (${e.code})` : ''}`);
  } finally {
    submit.disabled = false;
  }
}

async function downloadBackup(b) {
  setStatus(`Downloading ${b.name}…`);
  try {
    await download(instancePath(id, `/backups/${encodeURIComponent(b.id)}/download`), `backup-${b.id}.tar.zst`,
      (done, all) => setStatus(`Downloading ${b.name}: ${formatBytes(done)}${all ? ` of ${formatBytes(all)} (${Math.floor((done / all) * 100)}%)` : ''}`));
    setStatus(`Downloaded ${b.name}.`);
  } catch (e) {
    setStatus(`Download failed: ${e.message}`);
  }
}

async function restore(b) {
  const answer = await ask({
    title: `Restore ${b.name}?`,
    text: 'The server is stopped, then its files are replaced by the ones in this backup. Files changed since the backup are overwritten.',
    check: { label: 'Delete every file first (the server ends up exactly as in the backup)' },
    ok: 'Restore',
    danger: true,
  });
  if (!answer.ok) return;
  try {
    await call('POST', instancePath(id, `/backups/${encodeURIComponent(b.id)}/restore`), { json: { truncate: answer.checked } });
    restoring = { name: b.name, since: Date.now() };
    setStatus(`Restoring ${b.name}: the server was stopped; the console reports when the restore completes.`);
  } catch (e) {
    setStatus(`Could not restore: ${e.message}${e.code ? ` (${e.code})` : ''}`);
  }
}

async function remove(b) {
  const answer = await ask({ title: `Delete ${b.name}?`, text: 'The archive is deleted for good.', ok: 'Delete', danger: true });
  if (!answer.ok) return;
  try {
    await call('DELETE', instancePath(id, `/backups/${encodeURIComponent(b.id)}`));
    setStatus(`Deleted ${b.name}.`);
    load();
  } catch (e) {
    setStatus(`Could not delete: ${e.message}${e.code ? ` (${e.code})` : ''}`);
  }
}

// The console announces the end of a restore; show it here too.
const consoleOut = document.getElementById('console');
if (consoleOut) {
  new MutationObserver(() => {
    if (!restoring) return;
    const last = consoleOut.lastElementChild ? consoleOut.lastElementChild.textContent : '';
    if (/restore (completed|failed)/i.test(last)) {
      const secs = Math.round((Date.now() - restoring.since) / 1000);
      setStatus(`Restore of ${restoring.name} ${/failed/i.test(last) ? 'failed' : `completed in ${secs} s`}.`);
      restoring = null;
    }
  }).observe(consoleOut, { childList: true });
}

if (form) form.addEventListener('submit', create);
load();
