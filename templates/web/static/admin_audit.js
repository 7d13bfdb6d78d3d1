// The newest entries of the audit log (the unfiltered first page) grow as changes are
// made: each `audit` event of the event stream (see live.js) becomes a row at the top.

const version = new URL(import.meta.url).search;
const { formatTime } = await import(`./http.js${version}`);

const tbody = document.querySelector('#audit tbody');
const empty = document.getElementById('audit-empty');
// Rows kept on the page; older ones are on the next pages.
const KEEP = 200;

function cell(...children) {
  const td = document.createElement('td');
  td.append(...children);
  return td;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.textContent = text;
  return e;
}

function row(entry) {
  const tr = document.createElement('tr');
  tr.dataset.id = entry.id;
  const time = el('time', '', formatTime(entry.at));
  time.dateTime = entry.at;
  const who = entry.actor_email ? entry.actor_email : el('span', 'muted', 'anonymous');
  tr.append(
    cell(time),
    cell(who),
    cell(el('code', '', entry.action), document.createElement('br'), el('span', 'muted', `${entry.method} ${entry.path}`)),
    cell(...(entry.target ? [el('code', '', entry.target)] : [])),
    cell(entry.ip || ''),
    cell(el('span', `badge result-${entry.result}`, entry.result), ' ', el('span', 'muted', String(entry.status))),
  );
  return tr;
}

document.addEventListener('live:audit', (e) => {
  const entry = e.detail.entry;
  if (!entry || tbody.querySelector(`tr[data-id="${CSS.escape(entry.id)}"]`)) return;
  tbody.prepend(row(entry));
  if (empty) empty.hidden = true;
  while (tbody.children.length > KEEP) tbody.lastElementChild.remove();
});
