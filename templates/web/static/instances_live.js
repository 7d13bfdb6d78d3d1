// Keeps the state badges of the instance list live: every 5 s while the tab is visible,
// GET /v1/instances (the same list the page was rendered from) and update each row's
// badge. A failed poll changes nothing; the next one tries again.

const version = new URL(import.meta.url).search;
const { request } = await import(`./http.js${version}`);

const table = document.getElementById('instances');
const EVERY_MS = 5000;

async function refresh() {
  if (document.hidden || !table) return;
  try {
    const r = await request('GET', table.dataset.source);
    if (!r.ok) return;
    const body = await r.json();
    for (const instance of body.data || []) {
      const badge = table.querySelector(`[data-instance="${CSS.escape(instance.id)}"]`);
      if (badge && badge.textContent !== instance.state) {
        badge.textContent = instance.state;
        badge.className = `badge state-${instance.state}`;
      }
    }
  } catch {
    // Offline for a moment: keep what is shown.
  }
}

if (table) setInterval(refresh, EVERY_MS);
