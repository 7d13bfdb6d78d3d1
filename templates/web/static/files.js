// The Files tab: a paged, sorted listing (the API's paging, so a folder of 100,000
// entries costs one page), breadcrumbs, a text editor for config files, uploads by
// drag-and-drop or picker through tus (progress, pause/resume, resume after a reload),
// download, rename, delete and new folder. Every name is put in the page as text.

const version = new URL(import.meta.url).search;
const { call, request, errorOf, instancePath, formatBytes, formatTime, download, authHeaders } =
  await import(`./http.js${version}`);
const { Upload, pending } = await import(`./tus.js${version}`);
const { ask } = await import(`./dialog.js${version}`);

const PER_PAGE = 100;
const root = document.getElementById('instance');
const panel = document.getElementById('panel-files');
const id = root.dataset.instanceId;
const canWrite = panel.dataset.canWrite === 'true';
const tbody = document.querySelector('#files tbody');
const crumbs = document.getElementById('crumbs');
const status = document.getElementById('files-status');
const sortSelect = document.getElementById('file-sort');
const descBox = document.getElementById('file-desc');
const prev = document.getElementById('files-prev');
const next = document.getElementById('files-next');
const pageText = document.getElementById('files-page');
const editor = document.getElementById('editor');
const editorPath = document.getElementById('editor-path');
const editorText = document.getElementById('editor-text');
const editorSave = document.getElementById('editor-save');
const editorStatus = document.getElementById('editor-status');
const tusEndpoint = instancePath(id, '/files/tus');

let dir = '/';
let page = 1;
let total = 0;
let editing = null;
let loading = 0;

/** `/a/b` + `c` -> `/a/b/c`. */
function join(parent, name) {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

function fromHash() {
  const m = /^#files=(.*)$/.exec(location.hash);
  if (!m) return '/';
  try {
    const path = decodeURIComponent(m[1]);
    return path.startsWith('/') ? path : '/';
  } catch {
    return '/';
  }
}

function setStatus(text) {
  status.textContent = text;
}

function button(text, onClick, cls = 'secondary small') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

function renderCrumbs() {
  crumbs.replaceChildren();
  const parts = dir.split('/').filter(Boolean);
  const items = [['Files', '/']];
  parts.forEach((p, i) => items.push([p, `/${parts.slice(0, i + 1).join('/')}`]));
  items.forEach(([name, path], i) => {
    const li = document.createElement('li');
    if (i === items.length - 1) {
      const span = document.createElement('span');
      span.setAttribute('aria-current', 'location');
      span.textContent = name;
      li.append(span);
    } else {
      const a = document.createElement('a');
      a.href = `#files=${encodeURIComponent(path)}`;
      a.textContent = name;
      a.addEventListener('click', (ev) => { ev.preventDefault(); go(path); });
      li.append(a);
    }
    crumbs.append(li);
  });
}

function row(entry) {
  const tr = document.createElement('tr');
  tr.dataset.name = entry.name;
  const name = document.createElement('td');
  if (entry.kind === 'directory') {
    const a = document.createElement('a');
    a.href = `#files=${encodeURIComponent(entry.path)}`;
    a.className = 'entry dir';
    a.textContent = `${entry.name}/`;
    a.addEventListener('click', (ev) => { ev.preventDefault(); go(entry.path); });
    name.append(a);
  } else if (entry.editable) {
    name.append(button(entry.name, () => openEditor(entry.path), 'linkish entry file'));
  } else {
    const span = document.createElement('span');
    span.className = 'entry';
    span.textContent = entry.name;
    name.append(span);
  }
  if (entry.denied) name.append(' ', Object.assign(document.createElement('span'), { className: 'badge', textContent: 'denied' }));
  const size = document.createElement('td');
  size.textContent = entry.kind === 'directory' ? '–' : formatBytes(entry.size);
  const modified = document.createElement('td');
  modified.textContent = formatTime(entry.modified);
  const actions = document.createElement('td');
  actions.className = 'actions';
  if (entry.kind === 'file' && !entry.denied) {
    actions.append(button('Download', () => downloadFile(entry)));
  }
  if (canWrite && !entry.denied) {
    actions.append(button('Rename', () => rename(entry)));
    actions.append(button('Delete', () => remove(entry), 'danger small'));
  }
  for (const b of actions.querySelectorAll('button')) b.setAttribute('aria-label', `${b.textContent} ${entry.name}`);
  tr.append(name, size, modified, actions);
  return tr;
}

/** Reads the current page of the current folder. */
async function load() {
  const ticket = ++loading;
  const query = new URLSearchParams({
    path: dir, page: String(page), per_page: String(PER_PAGE), sort: sortSelect.value, desc: String(descBox.checked),
  });
  setStatus('Loading…');
  try {
    const listing = await call('GET', `${instancePath(id, '/files')}?${query}`);
    if (ticket !== loading) return;
    total = listing.total;
    tbody.replaceChildren(...listing.entries.map(row));
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    pageText.textContent = `Page ${page} of ${pages} · ${total} ${total === 1 ? 'entry' : 'entries'}`;
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    setStatus(total === 0 ? 'This folder is empty.' : '');
  } catch (e) {
    if (ticket !== loading) return;
    tbody.replaceChildren();
    setStatus(`Could not list ${dir}: ${e.message}${e.code ? ` (${e.code})` : ''}`);
  }
}

function go(path) {
  dir = path || '/';
  page = 1;
  const hash = `#files=${encodeURIComponent(dir)}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  renderCrumbs();
  load();
}

async function openEditor(path) {
  editing = path;
  editor.hidden = false;
  editorPath.textContent = path;
  editorText.value = '';
  editorText.disabled = true;
  editorStatus.textContent = 'Loading…';
  try {
    const r = await request('GET', `${instancePath(id, '/files/content')}?path=${encodeURIComponent(path)}`);
    if (!r.ok) throw await errorOf(r);
    editorText.value = await r.text();
    editorStatus.textContent = '';
    editorText.disabled = false;
    editorText.focus();
  } catch (e) {
    editorStatus.textContent = `Could not open ${path}: ${e.message}`;
  }
}

async function save() {
  if (!editing) return;
  editorSave.disabled = true;
  editorStatus.textContent = 'Saving…';
  try {
    await call('PUT', `${instancePath(id, '/files/content')}?path=${encodeURIComponent(editing)}`, {
      body: editorText.value,
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
    editorStatus.textContent = `Saved ${editing} at ${new Date().toLocaleTimeString()}.`;
    load();
  } catch (e) {
    editorStatus.textContent = `Not saved: ${e.message}${e.code ? ` (${e.code})` : ''}`;
  } finally {
    editorSave.disabled = false;
  }
}

async function downloadFile(entry) {
  setStatus(`Downloading ${entry.name}…`);
  try {
    await download(`${instancePath(id, '/files/download')}?path=${encodeURIComponent(entry.path)}`, entry.name,
      (done, all) => setStatus(`Downloading ${entry.name}: ${formatBytes(done)}${all ? ` of ${formatBytes(all)}` : ''}`));
    setStatus(`Downloaded ${entry.name}.`);
  } catch (e) {
    setStatus(`Download failed: ${e.message}`);
  }
}

async function rename(entry) {
  const answer = await ask({ title: `Rename ${entry.name}`, input: { label: 'New name', value: entry.name }, ok: 'Rename' });
  const name = answer.value.trim();
  if (!answer.ok || !name || name === entry.name) return;
  if (name.includes('/')) { setStatus('A name cannot contain "/".'); return; }
  try {
    await call('POST', instancePath(id, '/files/move'), { json: { from: entry.path, to: join(dir, name) } });
    setStatus(`Renamed ${entry.name} to ${name}.`);
    load();
  } catch (e) {
    setStatus(`Could not rename: ${e.message}`);
  }
}

async function remove(entry) {
  const what = entry.kind === 'directory' ? `the folder ${entry.name} and everything in it` : entry.name;
  const answer = await ask({ title: `Delete ${entry.name}?`, text: `This deletes ${what}. It cannot be undone.`, ok: 'Delete', danger: true });
  if (!answer.ok) return;
  try {
    await call('DELETE', instancePath(id, '/files'), { json: { path: entry.path } });
    setStatus(`Deleted ${entry.name}.`);
    if (editing === entry.path) editor.hidden = true;
    load();
  } catch (e) {
    setStatus(`Could not delete: ${e.message}`);
  }
}

async function newFolder() {
  const answer = await ask({ title: 'New folder', input: { label: 'Folder name' }, ok: 'Create' });
  const name = answer.value.trim();
  if (!answer.ok || !name) return;
  if (name.includes('/')) { setStatus('A name cannot contain "/".'); return; }
  try {
    await call('POST', instancePath(id, '/files/mkdir'), { json: { path: join(dir, name) } });
    setStatus(`Created ${name}.`);
    load();
  } catch (e) {
    setStatus(`Could not create the folder: ${e.message}`);
  }
}

// Uploads.
const uploadsList = document.getElementById('uploads');
const pendingText = document.getElementById('pending-uploads');

function showPending() {
  if (!pendingText) return;
  const left = pending(tusEndpoint);
  pendingText.hidden = left.length === 0;
  pendingText.textContent = left.length
    ? `Unfinished uploads: ${left.map((u) => `${u.name} in ${u.dir} (${formatBytes(u.offset || 0)} of ${formatBytes(u.size)})`).join(', ')}. Choose or drop the same file to continue.`
    : '';
}

function upload(file) {
  const up = new Upload(file, { endpoint: tusEndpoint, dir, headers: authHeaders });
  const li = document.createElement('li');
  li.className = 'upload';
  const label = document.createElement('span');
  label.className = 'upload-name';
  label.textContent = `${file.name} → ${dir}`;
  const bar = document.createElement('progress');
  bar.max = Math.max(file.size, 1);
  bar.value = 0;
  bar.setAttribute('aria-label', `Upload of ${file.name}`);
  const text = document.createElement('span');
  text.className = 'upload-text';
  text.setAttribute('role', 'status');
  const toggle = button('Pause', () => {
    if (up.state === 'uploading') up.pause(); else up.start();
  });
  toggle.classList.add('upload-toggle');
  const cancel = button('Cancel', async () => { await up.cancel(); li.remove(); showPending(); }, 'danger small');
  li.append(label, bar, text, toggle, cancel);
  uploadsList.append(li);
  const started = Date.now();
  up.onProgress = (sent, all) => {
    bar.value = Math.max(sent, all === 0 ? 1 : 0);
    const pct = all ? Math.floor((sent / all) * 100) : 100;
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0.5 ? ` · ${formatBytes(Math.round(sent / secs))}/s` : '';
    text.textContent = `${formatBytes(sent)} of ${formatBytes(all)} (${pct}%)${rate}`;
    li.dataset.percent = String(pct);
  };
  up.onState = (state, detail) => {
    li.dataset.state = state;
    toggle.textContent = state === 'uploading' ? 'Pause' : 'Resume';
    toggle.disabled = state === 'done' || state === 'cancelled';
    if (state === 'paused') text.textContent += ' · paused';
    if (detail === 'resumed') label.textContent = `${file.name} → ${up.dir} (resumed)`;
    if (state === 'error') text.textContent = `Failed: ${detail}. Resume to try again.`;
    if (state === 'done') {
      text.textContent = `${formatBytes(file.size)} uploaded`;
      cancel.remove();
      if (up.dir === dir) load();
    }
    showPending();
  };
  up.start();
}

function uploadAll(files) {
  if (!canWrite) return;
  for (const f of files) upload(f);
}

if (canWrite) {
  const zone = document.getElementById('dropzone');
  const picker = document.getElementById('file-pick');
  picker.addEventListener('change', () => { uploadAll([...picker.files]); picker.value = ''; });
  // The whole Files tab takes drops; the zone shows where.
  panel.addEventListener('dragover', (ev) => { ev.preventDefault(); zone.classList.add('over'); });
  panel.addEventListener('dragleave', (ev) => { if (ev.target === zone) zone.classList.remove('over'); });
  panel.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    if (ev.dataTransfer && ev.dataTransfer.files.length) uploadAll([...ev.dataTransfer.files]);
  });
  document.getElementById('file-newfolder').addEventListener('click', newFolder);
  if (editorSave) editorSave.addEventListener('click', save);
  showPending();
}

editorText.addEventListener('keydown', (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === 's' && editorSave) { ev.preventDefault(); save(); }
});
document.getElementById('editor-close').addEventListener('click', () => { editor.hidden = true; editing = null; });
sortSelect.addEventListener('change', () => { page = 1; load(); });
descBox.addEventListener('change', () => { page = 1; load(); });
prev.addEventListener('click', () => { if (page > 1) { page -= 1; load(); } });
next.addEventListener('click', () => { page += 1; load(); });
window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#files=') && fromHash() !== dir) go(fromHash());
});

dir = fromHash();
renderCrumbs();
load();
