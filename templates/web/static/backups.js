// The Backups tab: the list with each backup's state (a running one shows its progress
// as a percentage of bytes, live from the event stream: `live:backup_progress`, see
// live.js), create, restore after a confirmation (optionally emptying the server first;
// its progress shows the same way), download with progress, delete.

const version = new URL(import.meta.url).search;
const { call, instancePath, formatBytes, formatTime, download } = await import(`./http.js${version}`);
const { ask } = await import(`./dialog.js${version}`);

const RETRY_MS = 5000;
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
// The last progress report of each running backup, by id.
const progress = new Map();

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

function percent(p) {
  return p && p.bytes_total > 0 ? Math.min(100, Math.floor((p.bytes_done / p.bytes_total) * 100)) : null;
}

function progressText(p) {
  const pct = percent(p);
  if (pct === null) return p ? ` ${formatBytes(p.bytes_done)}` : '';
  return ` ${pct} % (${formatBytes(p.bytes_done)} of ${formatBytes(p.bytes_total)})`;
}

// Shows a running backup's report in its row.
function showProgress(tr, p) {
  const bar = tr.querySelector('progress');
  const text = tr.querySelector('.backup-progress');
  if (!bar || !text) return;
  const pct = percent(p);
  if (pct !== null) {
    bar.max = 100;
    bar.value = pct;
  }
  text.textContent = `archiving${progressText(p)}`;
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
    text.className = 'muted small-text backup-progress';
    text.textContent = b.status === 'pending' ? 'queued' : 'archiving';
    td.append(' ', bar, ' ', text);
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
  if (b.status === 'running' && progress.has(b.id)) showProgress(tr, progress.get(b.id));
  return tr;
}

async function load() {
  clearTimeout(timer);
  try {
    const answer = await call('GET', instancePath(id, '/backups'));
    const rows = answer.data || [];
    tbody.replaceChildren(...rows.map(row));
    if (rows.length === 0 && !status.textContent) setStatus('No backups yet.');
  } catch (e) {
    setStatus(`Could not list backups: ${e.message}`);
    timer = setTimeout(load, RETRY_MS);
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
  // Known before the answer: a small restore can end (and say so on the event stream)
  // before the request that started it is answered.
  const mine = { id: b.id, name: b.name, since: Date.now() };
  restoring = mine;
  setStatus(`Restoring ${b.name}…`);
  try {
    await call('POST', instancePath(id, `/backups/${encodeURIComponent(b.id)}/restore`), { json: { truncate: answer.checked } });
    if (restoring === mine) setStatus(`Restoring ${b.name}: the server was stopped.`);
  } catch (e) {
    if (restoring === mine) restoring = null;
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

// Progress and ends, from the event stream.
document.addEventListener('live:backup_progress', (e) => {
  const p = e.detail;
  if (p.instance_id !== id) return;
  if (p.operation === 'restore') {
    const name = restoring && restoring.id === p.backup_id ? restoring.name : 'the backup';
    if (p.status === 'running') {
      setStatus(`Restoring ${name}:${progressText(p)}`);
    } else {
      const secs = restoring ? Math.round((Date.now() - restoring.since) / 1000) : null;
      setStatus(p.status === 'completed'
        ? `Restore of ${name} completed${secs === null ? '' : ` in ${secs} s`}.`
        : `Restore of ${name} failed: ${p.error || 'see the console'}.`);
      restoring = null;
    }
    return;
  }
  if (p.status === 'running') {
    progress.set(p.backup_id, p);
    const tr = tbody.querySelector(`tr[data-id="${CSS.escape(p.backup_id)}"]`);
    if (tr && tr.dataset.status === 'running') showProgress(tr, p);
    else load();
  } else {
    progress.delete(p.backup_id);
    load();
  }
});

if (form) {
  form.addEventListener('submit', create);
  // Disabled in the page until this script handles the form (see migrate.js).
  document.getElementById('backup-create').disabled = false;
}
load();
