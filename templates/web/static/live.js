// Keeps the badges of a page live from the event stream (GET /v1/events, Server-Sent
// Events, authenticated by the session cookie): an instance's state badge
// (`data-live-instance="<id>"`), a node's status badge (`data-live-node="<id>"`), a
// server move's state (`data-live-migration="<id>"`) and the bell's unread count
// (`data-live-alerts`, on every signed-in page).
// Other scripts of the page hear the rest as DOM events on `document`, named
// `live:<event type>` with the event as `detail` (the Backups tab: `live:backup_progress`,
// the Schedules tab: `live:schedule_run`, a server's move: `live:migration`, the audit
// log: `live:audit`, the alerts: `live:alert`).
// The browser reconnects by itself and resumes from the last event it saw; a `resync`
// (events were missed that the panel no longer keeps) reloads the page once it is
// visible, so what it shows is current again.

const badges = (attr, id) => document.querySelectorAll(`[${attr}="${CSS.escape(id)}"]`);

function show(el, text, prefix) {
  if (el.textContent === text) return;
  el.textContent = text;
  el.className = `badge ${prefix}-${text}`;
}

function listen() {
  const source = new EventSource('/v1/events');
  source.addEventListener('instance_state', (e) => {
    const event = JSON.parse(e.data);
    for (const el of badges('data-live-instance', event.instance_id)) show(el, event.state, 'state');
  });
  source.addEventListener('node_status', (e) => {
    const event = JSON.parse(e.data);
    const status = event.online ? 'online' : 'offline';
    for (const el of badges('data-live-node', event.node_id)) show(el, status, 'status');
  });
  // A move only goes forward: a read answered before a later event must not take the
  // badge back (the stream may tell `completed` while the read still says `switching`).
  const STEP = { queued: 0, copying: 1, final_sync: 2, switching: 3 };
  const step = (state) => STEP[state] ?? 4;
  const showMove = (id, state, reason) => {
    for (const el of badges('data-live-migration', id)) {
      if (el.dataset.moveState && step(el.dataset.moveState) > step(state)) continue;
      el.dataset.moveState = state;
      el.textContent = reason ? `${state}: ${reason}` : state;
      el.className = `badge migration-${state}`;
    }
  };
  source.addEventListener('migration', (e) => {
    const event = JSON.parse(e.data);
    showMove(event.migration_id, event.state, event.reason);
  });
  // Moves shown by the page may have gone on before the stream opened: read them once.
  source.addEventListener('open', async () => {
    const { call } = await import(`./http.js${new URL(import.meta.url).search}`);
    for (const el of document.querySelectorAll('[data-live-migration]')) {
      try {
        const m = await call('GET', `/v1/migrations/${encodeURIComponent(el.dataset.liveMigration)}`);
        showMove(m.id, m.state, m.reason);
      } catch {
        // The badge keeps what the page said; events still update it.
      }
    }
  }, { once: true });
  // The bell: an alert fired or resolved somewhere the user may read; the count is the
  // user's own (what they have not seen), so it is read again rather than counted here.
  const bells = document.querySelectorAll('[data-live-alerts]');
  const recount = async () => {
    const { api } = await import(`./app.js${new URL(import.meta.url).search}`);
    try {
      const { count } = await api('GET', '/v1/alerts/unread-count');
      for (const el of bells) {
        el.textContent = String(count);
        el.hidden = count === 0;
      }
    } catch {
      // The bell keeps what it showed; the next event reads it again.
    }
  };
  if (bells.length) {
    source.addEventListener('alert', recount);
    // An alert may have fired between the page's render and the stream's start.
    source.addEventListener('open', recount, { once: true });
  }
  for (const type of ['backup_progress', 'schedule_run', 'migration', 'audit', 'alert']) {
    source.addEventListener(type, (e) => {
      document.dispatchEvent(new CustomEvent(`live:${type}`, { detail: JSON.parse(e.data) }));
    });
  }
  source.addEventListener('resync', () => {
    source.close();
    if (document.hidden) {
      document.addEventListener('visibilitychange', () => window.location.reload(), { once: true });
    } else {
      window.location.reload();
    }
  });
  // Set once the stream is open: from then on no event of the page is missed.
  source.addEventListener('open', () => { document.documentElement.dataset.live = 'on'; });
}

if (document.querySelector('[data-live-instance], [data-live-node], [data-live-migration], [data-live-events], [data-live-alerts]')) listen();
