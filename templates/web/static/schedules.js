// The Schedules tab: the instance's schedules (cron, enabled, next run), create one
// with a task (console command, power action or backup), run now, enable/disable,
// delete. The API checks cron and tasks; its errors are shown next to their fields.
// Runs starting and ending arrive from the event stream (`live:schedule_run`, live.js).

const version = new URL(import.meta.url).search;
const { call, instancePath, formatTime, clearFieldErrors, showFieldError } = await import(`./http.js${version}`);
const { ask } = await import(`./dialog.js${version}`);

const root = document.getElementById('instance');
const id = root.dataset.instanceId;
const tbody = document.querySelector('#schedules tbody');
const status = document.getElementById('schedules-status');
const form = document.getElementById('schedule-form');
const action = document.getElementById('schedule-action');
const payload = document.getElementById('schedule-payload');
const base = instancePath(id, '/schedules');

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

function describe(task) {
  if (task.action === 'backup') return `backup${task.backup_name ? ` "${task.backup_name}"` : ''}`;
  return `${task.action}: ${task.payload || ''}`;
}

// Names of the listed schedules, by id.
const names = new Map();

function row(s) {
  names.set(s.id, s.name);
  const tr = document.createElement('tr');
  tr.dataset.id = s.id;
  const name = document.createElement('td');
  name.textContent = s.name;
  const tasks = document.createElement('p');
  tasks.className = 'muted small-text';
  tasks.textContent = (s.tasks || []).map(describe).join(' → ');
  name.append(tasks);
  const cron = document.createElement('td');
  const code = document.createElement('code');
  code.textContent = s.cron;
  cron.append(code, ` ${s.timezone || ''}`);
  const enabled = document.createElement('td');
  enabled.textContent = s.enabled ? 'yes' : 'no';
  const next = document.createElement('td');
  next.textContent = s.enabled ? formatTime(s.next_run_at) : '–';
  const actions = document.createElement('td');
  actions.className = 'actions';
  actions.append(
    button('Run now', `Run ${s.name} now`, () => runNow(s)),
    button(s.enabled ? 'Disable' : 'Enable', `${s.enabled ? 'Disable' : 'Enable'} ${s.name}`, () => toggle(s)),
    button('Delete', `Delete ${s.name}`, () => remove(s), 'danger small'),
  );
  tr.append(name, cron, enabled, next, actions);
  return tr;
}

async function load() {
  try {
    const answer = await call('GET', base);
    const rows = answer.data || [];
    tbody.replaceChildren(...rows.map(row));
    if (rows.length === 0) setStatus('No schedules yet.');
  } catch (e) {
    setStatus(`Could not list schedules: ${e.message}`);
  }
}

async function runNow(s) {
  try {
    await call('POST', `${base}/${encodeURIComponent(s.id)}/run`, { json: {} });
    setStatus(`${s.name} is running now.`);
    load();
  } catch (e) {
    setStatus(`Could not run ${s.name}: ${e.message}`);
  }
}

async function toggle(s) {
  try {
    await call('PUT', `${base}/${encodeURIComponent(s.id)}`, { json: { enabled: !s.enabled } });
    setStatus(`${s.name} ${s.enabled ? 'disabled' : 'enabled'}.`);
    load();
  } catch (e) {
    setStatus(`Could not change ${s.name}: ${e.message}`);
  }
}

async function remove(s) {
  const answer = await ask({ title: `Delete ${s.name}?`, text: 'The schedule and its run history are deleted.', ok: 'Delete', danger: true });
  if (!answer.ok) return;
  try {
    await call('DELETE', `${base}/${encodeURIComponent(s.id)}`);
    setStatus(`Deleted ${s.name}.`);
    load();
  } catch (e) {
    setStatus(`Could not delete: ${e.message}`);
  }
}

function syncPayloadField() {
  payload.dataset.field = action.value === 'backup' ? 'tasks[0].backup_name' : 'tasks[0].payload';
}

async function create(ev) {
  ev.preventDefault();
  clearFieldErrors(form);
  const name = document.getElementById('schedule-name').value.trim();
  const cron = document.getElementById('schedule-cron').value.trim();
  const value = payload.value.trim();
  let first = null;
  if (!name) first = showFieldError(form, 'name', 'The name is required.');
  if (cron.split(/\s+/).length !== 5) first = first || showFieldError(form, 'cron', 'cron must have five fields: minute hour day-of-month month day-of-week');
  if (action.value !== 'backup' && !value) first = first || showFieldError(form, payload.dataset.field, 'This task needs a command or a power action.');
  if (first) { first.focus(); return; }
  const task = { action: action.value };
  if (action.value === 'backup') { if (value) task.backup_name = value; } else task.payload = value;
  try {
    await call('POST', base, { json: { name, cron, tasks: [task] } });
    form.reset();
    syncPayloadField();
    setStatus(`Created ${name}.`);
    load();
  } catch (e) {
    const control = showFieldError(form, e.field, `${e.message}${e.code ? ` (${e.code})` : ''}`);
    if (control) control.focus();
  }
}

document.addEventListener('live:schedule_run', (e) => {
  const run = e.detail;
  if (run.instance_id !== id) return;
  const name = names.get(run.schedule_id) || 'A schedule';
  const what = {
    running: 'is running',
    completed: 'completed its run',
    failed: `failed: ${run.error || 'see the run history'}`,
    skipped: `was skipped: ${run.error || 'its previous run still ran'}`,
  }[run.status] || run.status;
  setStatus(`${name} ${what}.`);
  if (run.status !== 'running') load();
});

action.addEventListener('change', syncPayloadField);
form.addEventListener('submit', create);
// Disabled in the page until this script handles the form (see migrate.js).
document.getElementById('schedule-create').disabled = false;
syncPayloadField();
load();
