// Shared by every page: the CSRF token, access tokens and API calls for page scripts,
// local times, and the last step of GitHub sign-in. No inline script anywhere: the
// Content-Security-Policy allows scripts from this origin only.

const meta = document.querySelector('meta[name="csrf-token"]');
/** The CSRF token of this page (double-submitted with its cookie). */
export const csrfToken = meta ? meta.content : '';

let cached = null;

/**
 * A short-lived access token of this browser's session, from POST /web/token.
 * @param {boolean} fresh skip the cached one
 */
export async function accessToken(fresh = false) {
  if (!fresh && cached && Date.now() < cached.until) return cached.token;
  const r = await fetch('/web/token', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'X-CSRF-Token': csrfToken },
  });
  if (r.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw new Error('signed out');
  }
  if (!r.ok) throw new Error(`could not get an access token (${r.status})`);
  const body = await r.json();
  cached = { token: body.access_token, until: Date.now() + (body.expires_in - 60) * 1000 };
  return cached.token;
}

/** Calls the /v1 API with the session's access token; throws its error envelope. */
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${await accessToken()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!r.ok) {
    const err = new Error((json && json.error) || r.statusText || `HTTP ${r.status}`);
    err.code = json && json.code;
    err.status = r.status;
    throw err;
  }
  return json;
}

/** Shows <time datetime> values in the reader's time zone. */
function localTimes() {
  for (const el of document.querySelectorAll('time[datetime]')) {
    const at = new Date(el.dateTime);
    if (!Number.isNaN(at.getTime())) el.textContent = at.toLocaleString();
  }
}

/** GitHub's callback lands with #github_code=...: post it (with the CSRF token). */
function githubSignIn() {
  const code = new URLSearchParams(location.hash.slice(1)).get('github_code');
  if (!code || !csrfToken) return;
  history.replaceState(null, '', location.pathname + location.search);
  const form = document.createElement('form');
  form.method = 'post';
  form.action = '/login/github';
  form.hidden = true;
  for (const [name, value] of [['csrf_token', csrfToken], ['code', code]]) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}

localTimes();
githubSignIn();
