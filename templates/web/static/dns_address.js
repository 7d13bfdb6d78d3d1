// The Address box of a server's page (`#dns-address`): the server's DNS records (GET
// /v1/dns/records?instance_id=) as players use them: with an SRV record, the name
// players type (the port comes from the SRV record); with only A/AAAA records,
// `name:port`. Its form changes the server's subdomain (PUT /v1/instances/{id} with
// `dns_subdomain`, empty for the default); the API's refusal (a name taken, a reserved
// or malformed one) is shown beside the field. Marked `data-script="on"` once loaded.

const version = new URL(import.meta.url).search;
const { call, clearFieldErrors, showFieldError, instancePath } = await import(`./http.js${version}`);

const box = document.getElementById('dns-address');
const q = encodeURIComponent;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** The host an SRV record's name is for: `_minecraft._tcp.mc.example.com` -> `mc.example.com`. */
function srvHost(name) {
  const labels = name.split('.');
  let i = 0;
  while (i < labels.length - 1 && labels[i].startsWith('_')) i += 1;
  return labels.slice(i).join('.');
}

/** The port of an SRV record's content (`priority weight port target`). */
function srvPort(content) {
  return String(content).trim().split(/\s+/)[2] || '';
}

function render(records) {
  const names = document.getElementById('dns-address-names');
  const status = document.getElementById('dns-address-status');
  const primary = box.dataset.primary || '';
  const port = primary.includes(':') ? primary.slice(primary.lastIndexOf(':') + 1) : '';
  names.replaceChildren();
  const srv = records.find((r) => r.type === 'SRV');
  const host = records.find((r) => r.type === 'A' || r.type === 'AAAA' || r.type === 'CNAME');
  if (!srv && !host) {
    status.textContent = 'This server has no DNS name yet: players use its address above.';
    const hint = el('p', 'muted small-text');
    const a = el('a', '', 'automatic DNS');
    a.href = '/dns/auto';
    hint.append('With ', a, ' on, each server gets its name in your zone.');
    names.append(hint);
    names.hidden = false;
    return;
  }
  status.textContent = '';
  const say = el('p', 'dns-players');
  if (srv) {
    const name = srvHost(srv.name);
    say.append('Players type ', el('code', '', name));
    say.querySelector('code').id = 'dns-player-address';
    say.append(`: the port${srvPort(srv.content) ? ` (${srvPort(srv.content)})` : ''} comes from the SRV record `, el('code', 'srv-name', srv.name), ', so they need not type it.');
    if (host && host.name !== name) say.append(' Games that do not read SRV records use ', el('code', '', `${host.name}${port ? `:${port}` : ''}`), '.');
    else if (port) say.append(' Games that do not read SRV records use ', el('code', 'name-port', `${name}:${port}`), '.');
  } else {
    const shown = port ? `${host.name}:${port}` : host.name;
    const c = el('code', '', shown);
    c.id = 'dns-player-address';
    say.append('Players type ', c, '.');
  }
  names.append(say);
  const list = el('ul', 'plain dns-address-records');
  for (const r of records) {
    const li = el('li', 'dns-address-record');
    Object.assign(li.dataset, { type: r.type, name: r.name, status: r.status });
    const badge = el('span', `badge${r.status === 'synced' ? ' result-success' : ''}${r.status === 'failed' || r.status === 'drifted' ? ' result-failure' : ''}`, r.status);
    li.append(el('span', 'small-text', `${r.type} `), el('code', '', r.name), ' → ', el('code', '', r.content), ' ', badge);
    if (r.last_error) li.append(' ', el('span', 'muted small-text', r.last_error));
    list.append(li);
  }
  names.append(list);
  names.hidden = false;
}

async function loadRecords() {
  try {
    const answer = await call('GET', `/v1/dns/records?instance_id=${q(box.dataset.instanceId)}${box.dataset.organization ? `&organization_id=${q(box.dataset.organization)}` : ''}`);
    const records = answer.data || [];
    render(records);
    return records;
  } catch (err) {
    document.getElementById('dns-address-status').textContent = err.status === 403
      ? 'You may not read this server\'s DNS records.'
      : `The DNS records could not be read: ${err.message}`;
    return [];
  }
}

async function start() {
  const input = document.getElementById('dns-subdomain');
  const form = document.getElementById('dns-subdomain-form');
  try {
    const instance = await call('GET', instancePath(box.dataset.instanceId));
    input.value = instance.dns_subdomain || '';
  } catch {
    // The box still lists the records.
  }
  await loadRecords();
  if (form) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearFieldErrors(form);
      const saved = document.getElementById('dns-subdomain-status');
      saved.textContent = '';
      const value = input.value.trim();
      const save = document.getElementById('dns-subdomain-save');
      save.disabled = true;
      try {
        await call('PUT', instancePath(box.dataset.instanceId), { json: { dns_subdomain: value || null } });
        saved.textContent = value ? `Saved: the subdomain is ${value}.` : 'Saved: the default subdomain is used.';
        // The records are rewritten by the panel; follow them for a few seconds while
        // any is still pending.
        for (let i = 0; i < 10; i += 1) {
          const records = await loadRecords();
          if (!records.some((r) => r.status === 'pending' || r.status === 'deleting')) break;
          await new Promise((resolve) => { setTimeout(resolve, 1000); });
        }
      } catch (err) {
        const field = err.field || (err.code === 'DNS_SUBDOMAIN_TAKEN' ? 'dns_subdomain' : null);
        showFieldError(form, field, `${err.message}${err.code && !err.field ? ` (${err.code})` : ''}`);
      } finally {
        save.disabled = false;
      }
    });
    // Disabled in the page until this script handles the form (see migrate.js).
    document.getElementById('dns-subdomain-save').disabled = false;
  }
  box.dataset.script = 'on';
}

if (box) start();
