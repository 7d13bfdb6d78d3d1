// The automatic DNS settings (/dns/auto): reads GET /v1/dns/auto-config into the form,
// lists the zones of the chosen credential from its provider (GET
// /v1/dns/zones?credential_id=), and saves with PUT /v1/dns/auto-config; the API's errors
// are shown beside the field they name. The reserved names come with the settings. The
// form is marked `data-script="on"` once the settings are in it.

const version = new URL(import.meta.url).search;
const { call, clearFieldErrors, showFieldError } = await import(`./http.js${version}`);

const q = encodeURIComponent;
const form = document.getElementById('auto-form');
const org = form ? form.dataset.organization : '';
const withOrg = (path) => (org ? `${path}${path.includes('?') ? '&' : '?'}organization_id=${q(org)}` : path);

const enabled = document.getElementById('auto-enabled');
const credential = document.getElementById('auto-credential');
const zone = document.getElementById('auto-zone');
const zoneStatus = document.getElementById('auto-zone-status');
const pattern = document.getElementById('auto-pattern');
const ttl = document.getElementById('auto-ttl');
const status = document.getElementById('auto-status');
const loading = document.getElementById('auto-loading');
const reserved = document.getElementById('auto-reserved');
const TYPES = ['A', 'AAAA', 'SRV'];

/** Fills the zone list of the chosen credential, `wanted` chosen (kept even if the provider does not list it). */
async function loadZones(wanted, wantedName) {
  zone.replaceChildren();
  const id = credential.value;
  if (!id) {
    zone.append(new Option('Choose a provider first', ''));
    zoneStatus.textContent = '';
    return;
  }
  zoneStatus.textContent = 'Reading the zones from the provider…';
  zone.disabled = true;
  try {
    const answer = await call('GET', `/v1/dns/zones?credential_id=${q(id)}`);
    zone.append(new Option('Choose a zone', ''));
    for (const z of answer.data || []) zone.append(new Option(z.name, z.id));
    if (wanted && ![...zone.options].some((o) => o.value === wanted)) {
      zone.append(new Option(`${wantedName || wanted} (not listed by the provider)`, wanted));
    }
    const errors = (answer.errors || []).map((e) => e.message);
    zoneStatus.textContent = errors.length ? `The provider answered: ${errors.join('; ')}` : '';
  } catch (err) {
    zone.append(new Option(wantedName || 'No zone could be read', wanted || ''));
    zoneStatus.textContent = `The zones could not be read: ${err.message}`;
  } finally {
    zone.disabled = false;
  }
  zone.value = wanted || '';
}

function show(config) {
  enabled.checked = Boolean(config.enabled);
  credential.value = config.credential_id || '';
  pattern.value = config.name_pattern || '{server}.{zone}';
  ttl.value = String(config.ttl || 300);
  const types = config.record_types || TYPES;
  for (const t of TYPES) document.getElementById(`auto-type-${t}`).checked = types.includes(t);
  reserved.replaceChildren();
  for (const name of config.reserved_names || []) {
    const li = document.createElement('li');
    const c = document.createElement('code');
    c.textContent = name;
    li.append(c);
    reserved.append(li);
  }
}

async function start() {
  try {
    const config = await call('GET', withOrg('/v1/dns/auto-config'));
    show(config);
    await loadZones(config.zone_id, config.zone_name);
    loading.hidden = true;
  } catch (err) {
    loading.textContent = `The settings could not be read: ${err.message}`;
  }
  form.dataset.script = 'on';
}

credential.addEventListener('change', () => loadZones('', ''));

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearFieldErrors(form);
  status.textContent = '';
  const body = {
    enabled: enabled.checked,
    credential_id: credential.value || null,
    zone_id: zone.value || null,
    name_pattern: pattern.value.trim(),
    record_types: TYPES.filter((t) => document.getElementById(`auto-type-${t}`).checked),
    ttl: Number(ttl.value),
  };
  const save = document.getElementById('auto-save');
  save.disabled = true;
  try {
    const config = await call('PUT', withOrg('/v1/dns/auto-config'), { json: body });
    show(config);
    await loadZones(config.zone_id, config.zone_name);
    status.textContent = config.enabled
      ? `Saved: new servers get ${config.name_pattern.replace('{zone}', config.zone_name || '{zone}')}.`
      : 'Saved: automatic DNS is off.';
  } catch (err) {
    showFieldError(form, err.field, `${err.message}${err.code && !err.field ? ` (${err.code})` : ''}`);
  } finally {
    save.disabled = false;
  }
});
// Disabled in the page until this script handles the form (see migrate.js).
document.getElementById('auto-save').disabled = false;

if (form) start();
