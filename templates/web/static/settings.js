// The Settings tab: variables (checked against the egg's rules here, then by the API),
// image and limits, saved with one PUT of what changed; the API's errors are shown
// next to the field they name.

const version = new URL(import.meta.url).search;
const { call, instancePath, clearFieldErrors, showFieldError } = await import(`./http.js${version}`);
const { check } = await import(`./rules.js${version}`);

const root = document.getElementById('instance');
const form = document.getElementById('settings-form');
const status = document.getElementById('settings-status');
const id = root.dataset.instanceId;

function changes() {
  const body = {};
  const variables = {};
  for (const input of form.querySelectorAll('[data-variable]:not([readonly])')) {
    if (input.value !== input.dataset.original) variables[input.dataset.variable] = input.value;
  }
  if (Object.keys(variables).length) body.variables = variables;
  const image = document.getElementById('set-image');
  if (image && !image.disabled && image.value !== image.dataset.original) body.image = image.value;
  const limits = {};
  for (const input of form.querySelectorAll('[data-limit]:not([readonly])')) {
    if (input.value !== input.dataset.original) limits[input.dataset.limit] = input.value;
  }
  if (Object.keys(limits).length) body.limits = limits;
  return body;
}

/** Browser-side checks; true when every field passes. */
function valid(body) {
  let first = null;
  for (const input of form.querySelectorAll('[data-variable]:not([readonly])')) {
    if (!(body.variables && input.dataset.variable in body.variables)) continue;
    const message = check(input.dataset.label, input.value, input.dataset.rules);
    if (message) first = first || showFieldError(form, input.dataset.field, message);
  }
  for (const [key, value] of Object.entries(body.limits || {})) {
    if (!/^-?\d+$/.test(String(value).trim())) {
      first = first || showFieldError(form, `limits.${key}`, `limits.${key} must be a whole number`);
    } else {
      body.limits[key] = Number(value);
    }
  }
  if (first) first.focus();
  return !first;
}

async function save(ev) {
  ev.preventDefault();
  clearFieldErrors(form);
  const body = changes();
  if (Object.keys(body).length === 0) {
    status.textContent = 'Nothing changed.';
    return;
  }
  if (!valid(body)) {
    status.textContent = 'Fix the fields marked above.';
    return;
  }
  const submit = document.getElementById('settings-save');
  submit.disabled = true;
  status.textContent = 'Saving…';
  try {
    await call('PUT', instancePath(id), { json: body });
    for (const el of form.querySelectorAll('[data-original]')) el.dataset.original = el.value;
    status.textContent = 'Saved. The changes take effect at the next start.';
  } catch (e) {
    const control = showFieldError(form, e.field, e.message);
    if (control) control.focus();
    status.textContent = `Not saved: ${e.message}${e.code ? ` (${e.code})` : ''}`;
  } finally {
    submit.disabled = false;
  }
}

if (form && form.dataset.canUpdate === 'true') {
  form.addEventListener('submit', save);
  // Disabled in the page until this script handles the form (see migrate.js).
  document.getElementById('settings-save').disabled = false;
}
