// A provision request's page (/provision/{id}): while a Terraform run goes
// (`#provision-log[data-follow="true"]`), reads the run's log every second from
// GET /v1/provision/{id}/logs?after=N (with the session's access token, see http.js),
// adds each line (a Terraform `-json` line shows its `@level` and `@message`, any other
// line as it is), and loads the page again when the run has ended, so the status, the
// plan to review and the buttons are current. It marks the log `data-script="on"` once
// loaded.

const version = new URL(import.meta.url).search;
const { call } = await import(`./http.js${version}`);

const section = document.getElementById('provision-log');
const list = document.getElementById('log-lines');
const status = document.getElementById('log-status');
const EVERY_MS = 1000;

/** `{level, text}` of a log line. */
function shown(line) {
  try {
    const json = JSON.parse(line);
    if (json && typeof json === 'object' && typeof json['@message'] === 'string') {
      return { level: typeof json['@level'] === 'string' ? json['@level'] : '', text: json['@message'] };
    }
  } catch {
    // Not JSON: shown as it is.
  }
  return { level: '', text: line };
}

function add({ seq, line }) {
  const { level, text } = shown(line);
  const li = document.createElement('li');
  li.className = `log-line log-${level}`;
  li.dataset.seq = String(seq);
  if (level) {
    const l = document.createElement('span');
    l.className = 'log-level';
    l.textContent = level;
    li.append(l, ' ');
  }
  const t = document.createElement('span');
  t.className = 'log-text';
  t.textContent = text;
  li.append(t);
  list.append(li);
}

async function follow() {
  const id = section.dataset.request;
  let next = Number(section.dataset.next) || 0;
  for (;;) {
    try {
      const answer = await call('GET', `/v1/provision/${encodeURIComponent(id)}/logs?after=${next}`);
      const atEnd = list.lastElementChild && window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      for (const line of answer.lines) add(line);
      if (answer.lines.length && atEnd) list.lastElementChild.scrollIntoView({ block: 'nearest' });
      next = answer.next;
      section.dataset.next = String(next);
      if (answer.done) {
        status.textContent = `${answer.run ? answer.run.status : 'ended'}: loading the page again…`;
        // Without `?done=`: the notice of the form that started the run is stale now.
        window.location.replace(window.location.pathname);
        return;
      }
      status.textContent = 'Running…';
    } catch (err) {
      status.textContent = `The log could not be read (${err.message}); trying again.`;
    }
    await new Promise((resolve) => { setTimeout(resolve, EVERY_MS); });
  }
}

if (section && list) {
  section.dataset.script = 'on';
  if (section.dataset.follow === 'true') follow();
}
