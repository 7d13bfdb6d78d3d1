// The DNS pages, over the /v1/dns API with the session (see http.js):
// - /dns (`#dns-credentials`, `#dns-managed`): each DNS credential's zones read from its
//   provider (GET /v1/dns/zones?credential_id=), each linking to its zone page; the
//   records the panel manages (GET /v1/dns/records?credential_id=) with their status,
//   origin and server, Edit (on the zone page) and Delete (after a confirmation).
// - /dns/zones/{credential}/{zone} (`#dns-zone`): the zone's records as the provider
//   holds them (GET /v1/dns/zones/{zone}/records?credential_id=), the panel's marked,
//   with Edit and Delete; the form that creates a record (POST /v1/dns/records; SRV from
//   its four inputs, "priority weight port target") or edits one (PUT
//   /v1/dns/records/{id}); `?edit=<record id>` opens a record in the form. The API's
//   errors are shown beside the field they name, or above the form (a name clash).
// Each part marks itself `data-script="on"` once loaded.

const version = new URL(import.meta.url).search;
const { call, clearFieldErrors, showFieldError } = await import(`./http.js${version}`);
const { ask } = await import(`./dialog.js${version}`);

const q = encodeURIComponent;

/** `path` with `?organization_id=` of `org` (none: the caller's personal organization). */
function inOrg(path, org) {
  return org ? `${path}${path.includes('?') ? '&' : '?'}organization_id=${q(org)}` : path;
}

/** An element `tag` with `className` and text. */
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** A `<code>` with `text`. */
function code(text) {
  return el('code', '', text);
}

/** The badge of a record's status. */
function statusBadge(status) {
  const good = status === 'synced';
  const bad = status === 'failed' || status === 'drifted';
  return el('span', `badge dns-status status-${status}${good ? ' result-success' : ''}${bad ? ' result-failure' : ''}`, status);
}

/** `name` relative to `zone` (`@` for the zone itself). */
function relative(name, zone) {
  if (!zone || name === zone) return zone ? '@' : name;
  return name.endsWith(`.${zone}`) ? name.slice(0, -(zone.length + 1)) : name;
}

/** Asks, then deletes record `r`; true once the API accepted. */
async function deleteRecord(r, onError) {
  const answer = await ask({
    title: `Delete ${r.type} ${r.name}?`,
    text: 'The record and its ownership marker are removed at the provider. Players using this name can no longer reach the server by it.',
    ok: 'Delete',
    danger: true,
  });
  if (!answer.ok) return false;
  try {
    await call('DELETE', `/v1/dns/records/${q(r.id)}`);
    return true;
  } catch (err) {
    onError(`${err.message}${err.code ? ` (${err.code})` : ''}`);
    return false;
  }
}

// ---- /dns ---------------------------------------------------------------------------

async function loadZones(box, org) {
  const status = box.querySelector('.zones-status');
  const list = box.querySelector('.zones');
  const id = box.dataset.credential;
  try {
    const answer = await call('GET', inOrg(`/v1/dns/zones?credential_id=${q(id)}`, org));
    list.replaceChildren();
    for (const z of answer.data || []) {
      const li = el('li', 'zone');
      const a = el('a', 'zone-link', z.name);
      a.href = `/dns/zones/${q(id)}/${q(z.id)}`;
      a.dataset.zone = z.id;
      li.append(a);
      list.append(li);
    }
    const errors = (answer.errors || []).map((e) => e.message);
    if (errors.length) {
      status.className = 'error zones-status';
      status.textContent = `The provider answered: ${errors.join('; ')}`;
    } else {
      status.className = 'muted zones-status';
      status.textContent = list.children.length ? `${list.children.length} zone(s):` : 'The provider holds no zone this credential may use.';
    }
  } catch (err) {
    status.className = 'error zones-status';
    status.textContent = `The zones could not be read: ${err.message}${err.code ? ` (${err.code})` : ''}`;
  }
  box.dataset.script = 'on';
}

async function serverNames(org) {
  try {
    const page = await call('GET', inOrg('/v1/instances?per_page=100', org));
    return new Map((page.data || []).map((i) => [i.id, i.name]));
  } catch {
    return new Map();
  }
}

async function loadManaged(section, credentials, org) {
  const status = document.getElementById('records-status');
  const error = document.getElementById('records-error');
  const wrap = document.getElementById('records-wrap');
  const body = section.querySelector('#records tbody');
  const records = [];
  const failures = [];
  await Promise.all(credentials.map(async (id) => {
    try {
      const answer = await call('GET', inOrg(`/v1/dns/records?credential_id=${q(id)}`, org));
      records.push(...(answer.data || []));
    } catch (err) {
      failures.push(err.message);
    }
  }));
  const servers = await serverNames(org);
  records.sort((a, b) => a.name.localeCompare(b.name) || a.type.localeCompare(b.type));
  body.replaceChildren();
  for (const r of records) {
    const tr = el('tr', 'dns-record');
    tr.id = `record-${r.id}`;
    Object.assign(tr.dataset, { record: r.id, name: r.name, type: r.type, status: r.status });
    const state = el('td');
    state.append(statusBadge(r.status));
    if (r.last_error) state.append(el('br'), el('span', 'muted small-text last-error', r.last_error));
    const origin = el('td', 'origin');
    origin.append(el('span', 'badge', r.origin));
    if (r.instance_id) {
      const a = el('a', 'server-link', servers.get(r.instance_id) || 'server');
      a.href = `/instances/${q(r.instance_id)}`;
      origin.append(' ', a);
    }
    const actions = el('td', 'actions');
    const edit = el('a', 'button secondary edit', 'Edit');
    edit.href = `/dns/zones/${q(r.credential_id)}/${q(r.zone_id)}?edit=${q(r.id)}`;
    const del = el('button', 'danger delete', 'Delete');
    del.type = 'button';
    del.id = `delete-${r.id}`;
    del.addEventListener('click', async () => {
      const show = (m) => { error.textContent = m; error.hidden = false; };
      if (await deleteRecord(r, show)) loadManaged(section, credentials, org);
    });
    actions.append(edit, ' ', del);
    const content = el('td');
    content.append(code(r.content));
    const name = el('td');
    name.append(code(r.name));
    tr.append(name, el('td', '', r.type), content, el('td', '', r.ttl), state, origin, actions);
    body.append(tr);
  }
  wrap.hidden = records.length === 0;
  status.textContent = records.length ? '' : 'The panel manages no record yet.';
  if (failures.length) {
    error.textContent = `Some records could not be read: ${failures.join('; ')}`;
    error.hidden = false;
  }
  section.dataset.script = 'on';
}

function index() {
  const boxes = [...document.querySelectorAll('.dns-credential[data-credential]')];
  const managed = document.getElementById('dns-managed');
  const org = managed ? managed.dataset.organization : '';
  for (const box of boxes) loadZones(box, org);
  if (managed) loadManaged(managed, boxes.map((b) => b.dataset.credential), org);
}

// ---- /dns/zones/{credential}/{zone} ---------------------------------------------------

const CONTENT_HELP = {
  A: 'An IPv4 address such as 203.0.113.10; leave it empty to follow a node.',
  AAAA: 'An IPv6 address such as 2001:db8::10; leave it empty to follow a node.',
  CNAME: 'The name this one stands for, such as play.example.net.',
  TXT: 'The text, without quotes.',
};

function zonePage(section) {
  const credential = section.dataset.credential;
  const zoneId = section.dataset.zone;
  const org = section.dataset.organization;
  let zoneName = '';
  const form = document.getElementById('record-form');
  const title = document.getElementById('record-form-title');
  const type = document.getElementById('rec-type');
  const name = document.getElementById('rec-name');
  const ttl = document.getElementById('rec-ttl');
  const content = document.getElementById('rec-content');
  const contentRow = document.getElementById('rec-content-row');
  const contentHelp = document.getElementById('rec-content-help');
  const srv = document.getElementById('rec-srv');
  const srvPriority = document.getElementById('rec-srv-priority');
  const srvWeight = document.getElementById('rec-srv-weight');
  const srvPort = document.getElementById('rec-srv-port');
  const srvTarget = document.getElementById('rec-srv-target');
  const node = document.getElementById('rec-node');
  const nodeRow = document.getElementById('rec-node-row');
  const submit = document.getElementById('rec-submit');
  const cancel = document.getElementById('rec-cancel');
  const status = document.getElementById('record-status');
  const zoneStatus = document.getElementById('zone-status');
  const zoneError = document.getElementById('zone-error');
  const table = document.getElementById('zone-records');
  /** The record being edited (null: the form creates). */
  let editing = null;

  const showType = () => {
    const t = type.value;
    const isSrv = t === 'SRV';
    srv.hidden = !isSrv;
    contentRow.hidden = isSrv;
    nodeRow.hidden = !(t === 'A' || t === 'AAAA');
    contentHelp.textContent = CONTENT_HELP[t] || '';
    // The API names `content` for an SRV record too: its error goes beside the target.
    if (isSrv) {
      content.removeAttribute('data-field');
      srvTarget.dataset.field = 'content';
    } else {
      srvTarget.removeAttribute('data-field');
      content.dataset.field = 'content';
    }
  };
  type.addEventListener('change', showType);

  const reset = () => {
    editing = null;
    form.reset();
    form.dataset.mode = 'create';
    type.disabled = false;
    title.textContent = 'Add a record';
    submit.textContent = 'Add record';
    cancel.hidden = true;
    clearFieldErrors(form);
    showType();
  };
  cancel.addEventListener('click', () => { reset(); status.textContent = ''; });

  const fill = (r) => {
    reset();
    editing = r;
    form.dataset.mode = 'edit';
    form.dataset.record = r.id;
    type.value = r.type;
    type.disabled = true;
    name.value = relative(r.name, r.zone_name || zoneName);
    ttl.value = String(r.ttl);
    node.value = r.node_id || '';
    if (r.type === 'SRV') {
      const [p, w, port, target] = String(r.content).split(/\s+/);
      srvPriority.value = p || '0';
      srvWeight.value = w || '0';
      srvPort.value = port || '';
      srvTarget.value = target || '';
    } else {
      content.value = r.node_id ? '' : r.content;
    }
    title.textContent = `Edit ${r.type} ${r.name}`;
    submit.textContent = 'Save the record';
    cancel.hidden = false;
    showType();
    form.scrollIntoView({ block: 'start' });
    name.focus();
  };

  const edit = async (id) => {
    try {
      fill(await call('GET', `/v1/dns/records/${q(id)}`));
    } catch (err) {
      zoneError.textContent = `The record could not be read: ${err.message}`;
      zoneError.hidden = false;
    }
  };

  const load = async () => {
    try {
      const answer = await call('GET', inOrg(`/v1/dns/zones/${q(zoneId)}/records?credential_id=${q(credential)}`, org));
      zoneName = (answer.zone && answer.zone.name) || zoneId;
      document.getElementById('zone-name').textContent = zoneName;
      for (const s of document.querySelectorAll('.zone-suffix')) s.textContent = zoneName;
      const body = table.querySelector('tbody');
      body.replaceChildren();
      for (const r of answer.data || []) {
        const tr = el('tr', `zone-record${r.managed ? ' managed' : ''}`);
        Object.assign(tr.dataset, { name: r.name, type: r.type, managed: String(Boolean(r.managed)) });
        if (r.record_id) tr.dataset.record = r.record_id;
        const nameCell = el('td');
        nameCell.append(code(r.name));
        const contents = el('td', 'contents');
        (r.contents || []).forEach((c, i) => {
          if (i) contents.append(el('br'));
          contents.append(code(c));
        });
        const panel = el('td');
        if (r.managed) panel.append(el('span', 'badge result-success managed-badge', 'managed'));
        else if (r.name.startsWith('_shardlyn-owner.')) panel.append(el('span', 'muted small-text', 'ownership marker'));
        else panel.append(el('span', 'muted small-text', 'not the panel\'s'));
        const actions = el('td', 'actions');
        if (r.managed && r.record_id) {
          const e = el('button', 'secondary edit', 'Edit');
          e.type = 'button';
          e.id = `edit-${r.record_id}`;
          e.addEventListener('click', () => edit(r.record_id));
          const d = el('button', 'danger delete', 'Delete');
          d.type = 'button';
          d.id = `delete-${r.record_id}`;
          d.addEventListener('click', async () => {
            const show = (m) => { zoneError.textContent = m; zoneError.hidden = false; };
            if (await deleteRecord({ id: r.record_id, type: r.type, name: r.name }, show)) {
              if (editing && editing.id === r.record_id) reset();
              status.textContent = `Deleted ${r.type} ${r.name}.`;
              load();
            }
          });
          actions.append(e, ' ', d);
        }
        tr.append(nameCell, el('td', '', r.type), el('td', '', r.ttl), contents, panel, actions);
        body.append(tr);
      }
      table.hidden = false;
      zoneError.hidden = true;
      zoneStatus.textContent = `${(answer.data || []).length} record set(s) at the provider.`;
    } catch (err) {
      zoneError.textContent = `The provider's records could not be read: ${err.message}${err.code ? ` (${err.code})` : ''}`;
      zoneError.hidden = false;
      zoneStatus.textContent = '';
    }
    section.dataset.script = 'on';
  };

  /** The content typed for the chosen type ("" when none). */
  const typedContent = () => {
    if (type.value === 'SRV') {
      const parts = [srvPriority.value, srvWeight.value, srvPort.value, srvTarget.value].map((v) => v.trim());
      return parts.every((p) => p === '') ? '' : parts.join(' ');
    }
    return content.value.trim();
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    status.textContent = '';
    const body = { name: name.value.trim(), ttl: Number(ttl.value) };
    if (!Number.isFinite(body.ttl) || ttl.value.trim() === '') delete body.ttl;
    const text = typedContent();
    if (text !== '') body.content = text;
    const follows = nodeRow.hidden ? '' : node.value;
    submit.disabled = true;
    try {
      if (editing) {
        if (follows) body.node_id = follows;
        else if (editing.node_id) body.node_id = '';
        const r = await call('PUT', `/v1/dns/records/${q(editing.id)}`, { json: body });
        status.textContent = `Saved ${r.type} ${r.name} (${r.status}).`;
      } else {
        Object.assign(body, { credential_id: credential, zone_id: zoneId, type: type.value });
        if (follows) body.node_id = follows;
        const r = await call('POST', inOrg('/v1/dns/records', org), { json: body });
        status.textContent = `Added ${r.type} ${r.name} (${r.status}).`;
      }
      reset();
      await load();
    } catch (err) {
      const message = `${err.message}${err.code && !err.field ? ` (${err.code})` : ''}`;
      showFieldError(form, err.field, message);
    } finally {
      submit.disabled = false;
    }
  });

  showType();
  form.dataset.script = 'on';
  // Disabled in the page until this script handles the form (see migrate.js).
  submit.disabled = false;
  load();
  const wanted = new URLSearchParams(window.location.search).get('edit');
  if (wanted) edit(wanted);
}

const zone = document.getElementById('dns-zone');
if (zone) zonePage(zone);
else index();
