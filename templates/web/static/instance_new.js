// The create-instance form: choosing another workload or bundled template reloads the
// form with its variables (a template is added to the organization's workloads when the
// form is sent); the fields are checked here against the egg's rules and the
// API's ranges, then sent to POST /v1/instances, whose errors (a variable failing its
// rules, a port already taken...) are shown next to the field they concern.

const version = new URL(import.meta.url).search;
const { call, clearFieldErrors, showFieldError } = await import(`./http.js${version}`);
const { check } = await import(`./rules.js${version}`);

const choice = document.getElementById('new-choice');
const form = document.getElementById('new-instance');
const workload = document.getElementById('nw-workload');
const node = document.getElementById('nw-node');
const submit = document.getElementById('new-submit');
const progress = document.getElementById('new-progress');
const bar = document.getElementById('new-progress-bar');
const progressText = document.getElementById('new-progress-text');

/** Errors without a field that still concern one. */
const FIELD_OF_CODE = {
  PORT_IN_USE: 'ports[0]',
  NO_PORT_AVAILABLE: 'ports[0]',
  NODE_OFFLINE: 'node_id',
  NODE_CORDONED: 'node_id',
  NO_NODE_AVAILABLE: 'node_id',
  INSUFFICIENT_CAPACITY: 'node_id',
};

const LIMITS = {
  memory_mb: [(n) => n === 0 || (n >= 64 && n <= 1073741824), '0 (unlimited) or between 64 and 1073741824 MiB'],
  swap_mb: [(n) => n >= -1 && n <= 1073741824, '-1 (unlimited), 0 (none) or a size in MiB'],
  cpu_percent: [(n) => n >= 0 && n <= 6400, 'between 0 (unlimited) and 6400 (percent of one core)'],
  disk_mb: [(n) => n >= 0 && n <= 1073741824, '0 (unlimited) or a size in MiB'],
};

function step(n, text) {
  progress.hidden = false;
  bar.value = n;
  progressText.textContent = text;
}

/** The request body, or null after showing what is wrong. */
function body() {
  const errors = [];
  const name = document.getElementById('ni-name').value.trim();
  if (!name) errors.push(['name', 'The name is required.']);
  else if ([...name].length > 191) errors.push(['name', 'name must be 1 to 191 characters']);
  const out = { name, workload_id: form.dataset.workloadId, variables: {}, limits: {} };
  const description = document.getElementById('ni-description').value;
  if (description.trim()) out.description = description;
  if (node && node.value) out.node_id = node.value;
  const image = document.getElementById('ni-image');
  if (image) out.image = image.value;
  for (const input of form.querySelectorAll('[data-variable]')) {
    const message = check(input.dataset.label, input.value, input.dataset.rules);
    if (message) errors.push([input.dataset.field, message]);
    out.variables[input.dataset.variable] = input.value;
  }
  for (const input of form.querySelectorAll('[data-limit]')) {
    const key = input.dataset.limit;
    const text = input.value.trim();
    const n = Number(text);
    if (!/^-?\d+$/.test(text) || !LIMITS[key][0](n)) errors.push([`limits.${key}`, `limits.${key} must be ${LIMITS[key][1]}`]);
    else out.limits[key] = n;
  }
  const port = document.getElementById('ni-port').value.trim();
  if (port) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1024 || n > 65535) errors.push(['ports[0]', `ports[0]: ${port} is not a port between 1024 and 65535`]);
    else out.ports = [n];
  }
  out.start_on_completion = document.getElementById('ni-start').checked;
  let first = null;
  for (const [field, message] of errors) {
    const control = showFieldError(form, field, message);
    first = first || control;
  }
  if (first) first.focus();
  return errors.length ? null : out;
}

async function create(ev) {
  ev.preventDefault();
  clearFieldErrors(form);
  progress.hidden = true;
  const request = body();
  if (!request) return;
  submit.disabled = true;
  try {
    // A bundled template becomes one of the organization's workloads first, once: a
    // retry after a field error reuses it.
    if (form.dataset.template && !form.dataset.workloadId) {
      step(1, 'Adding the template to your workloads…');
      const workload = await call('POST', '/v1/workloads/from-template', { json: { template: form.dataset.template } });
      form.dataset.workloadId = workload.id;
      request.workload_id = workload.id;
    }
    step(1, 'Creating the instance…');
    const instance = await call('POST', '/v1/instances', { json: request });
    step(2, 'Created; the node is installing it. Opening its page…');
    bar.value = 3;
    location.assign(`/instances/${encodeURIComponent(instance.id)}`);
  } catch (e) {
    progress.hidden = true;
    const field = e.field || FIELD_OF_CODE[e.code] || null;
    const inChoice = Boolean(field && choice
      && [...choice.querySelectorAll('[data-field]')].some((el) => el.dataset.field === field));
    const control = showFieldError(inChoice ? choice : form, field, `${e.message}${e.code ? ` (${e.code})` : ''}`);
    if (control) control.focus();
    submit.disabled = false;
  }
}

if (workload) {
  workload.addEventListener('change', () => {
    const q = new URLSearchParams({ workload: workload.value });
    if (node && node.value) q.set('node', node.value);
    location.assign(`/instances/new?${q}`);
  });
}
if (choice) {
  const load = document.getElementById('nw-load');
  if (load) load.hidden = true;
}
if (form) {
  form.addEventListener('submit', create);
  // Disabled in the page until this script handles the form (see migrate.js).
  submit.disabled = false;
}
