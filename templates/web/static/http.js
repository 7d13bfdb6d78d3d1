// Calls to the /v1 API from the instance pages, with the session's short-lived access
// token and the page's CSRF token on every request; error envelopes as thrown errors
// (with `code`, `status` and the `field` they concern); field errors shown next to the
// control that has `data-field` set to that field; byte sizes; downloads.

const version = new URL(import.meta.url).search;
const { accessToken, csrfToken } = await import(`./app.js${version}`);

/** The headers every call carries. */
export async function authHeaders(fresh = false) {
  return { Authorization: `Bearer ${await accessToken(fresh)}`, 'X-CSRF-Token': csrfToken };
}

/**
 * Sends `method path`; `json` is sent as JSON, `body` as it is. One retry with a fresh
 * token on a 401 (the cached one may have just expired).
 */
export async function request(method, path, { json, body, headers = {}, signal } = {}) {
  const send = async (fresh) => {
    const h = { ...(await authHeaders(fresh)), ...headers };
    let payload = body;
    if (json !== undefined) {
      h['Content-Type'] = 'application/json';
      payload = JSON.stringify(json);
    }
    return fetch(path, { method, headers: h, body: payload, signal, credentials: 'same-origin' });
  };
  const r = await send(false);
  return r.status === 401 ? send(true) : r;
}

/** The API error of a failed answer. */
export async function errorOf(r) {
  const text = await r.text().catch(() => '');
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  const err = new Error((json && json.error) || r.statusText || `HTTP ${r.status}`);
  err.code = json && json.code;
  err.field = json && json.field;
  err.status = r.status;
  return err;
}

/** `request` that answers the JSON body (null when empty) or throws the API error. */
export async function call(method, path, options) {
  const r = await request(method, path, options);
  if (!r.ok) throw await errorOf(r);
  const text = await r.text();
  try { return text ? JSON.parse(text) : null; } catch { return text; }
}

/** `/v1/instances/{id}{rest}`. */
export function instancePath(id, rest = '') {
  return `/v1/instances/${encodeURIComponent(id)}${rest}`;
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** A point in time in the reader's locale (`ms` or an RFC 3339 text). */
export function formatTime(at) {
  if (at === null || at === undefined || at === '') return '–';
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? '–' : d.toLocaleString();
}

/** The file name of a `Content-Disposition` header, if any. */
function dispositionName(header) {
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header || '');
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch { return m[1]; }
}

/**
 * Downloads `path` (an authenticated GET) as a file named after its
 * Content-Disposition, else `fallback`; `onProgress(done, total)` while it arrives.
 */
export async function download(path, fallback, onProgress) {
  const r = await request('GET', path);
  if (!r.ok) throw await errorOf(r);
  const total = Number(r.headers.get('Content-Length')) || 0;
  const chunks = [];
  let done = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done: end, value } = await reader.read();
    if (end) break;
    chunks.push(value);
    done += value.length;
    if (onProgress) onProgress(done, total);
  }
  const url = URL.createObjectURL(new Blob(chunks));
  const a = document.createElement('a');
  a.href = url;
  a.download = dispositionName(r.headers.get('Content-Disposition')) || fallback || 'download';
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** Removes the field errors shown in `form`. */
export function clearFieldErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.remove();
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') || '').split(' ').filter((x) => !x.endsWith('-error'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' ')); else el.removeAttribute('aria-describedby');
  }
  const general = form.querySelector('.error[role="alert"]');
  if (general) { general.hidden = true; general.textContent = ''; }
}

/**
 * Shows `message` next to the control of `form` whose `data-field` is `field`; in the
 * form's alert when no control matches. Answers the control (focused) or null.
 */
export function showFieldError(form, field, message) {
  const control = field
    ? [...form.querySelectorAll('[data-field]')].find((el) => el.dataset.field === field)
    : null;
  if (!control) {
    const general = form.querySelector('.error[role="alert"]');
    if (general) {
      general.textContent = message;
      general.hidden = false;
    }
    return null;
  }
  const p = document.createElement('p');
  p.className = 'field-error';
  p.id = `${control.id || field.replace(/[^\w-]/g, '_')}-error`;
  p.textContent = message;
  control.insertAdjacentElement('afterend', p);
  control.setAttribute('aria-invalid', 'true');
  const ids = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  control.setAttribute('aria-describedby', [...ids, p.id].join(' '));
  return control;
}
