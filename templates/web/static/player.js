// The node page's recording player: a recording's "Play" button reads its asciicast v2
// file (a JSON header line, then `[seconds, code, data]` lines) from the page's own
// route and plays it into a read-only xterm.js terminal the size the header gives:
// "o" is output, "r" a resize ("COLSxROWS"), "m" a marker shown in the status line.
// Play/pause, 1x/2x/4x, "skip idle" (no wait longer than 2 s) and "jump to end".
// Written here rather than taken from asciinema-player: the page needs a few dozen lines
// of it, on the xterm.js it already serves.

const version = new URL(import.meta.url).search;
const { openTerminal } = await import(`./term.js${version}`);

const root = document.getElementById('player');
const box = document.getElementById('player-term');
const title = document.getElementById('player-title');
const statusLine = document.getElementById('player-status');
const playButton = document.getElementById('player-play');
const speedSelect = document.getElementById('player-speed');
const skipIdle = document.getElementById('player-skip');
const endButton = document.getElementById('player-end');
const closeButton = document.getElementById('player-close');

/** The longest wait between two events with "skip idle" on, in seconds. */
const IDLE_CAP = 2;

/** The recording loaded: `{ view, events, index, timer, playing, at }`. */
let cast = null;

/** The header and events of an asciicast v2 text; throws on another format. */
export function parse(text) {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error('the recording is empty');
  const header = JSON.parse(lines[0]);
  if (!header || header.version !== 2) throw new Error('not an asciicast v2 recording');
  const events = [];
  for (const line of lines.slice(1)) {
    let e;
    try { e = JSON.parse(line); } catch { continue; }
    if (Array.isArray(e) && e.length >= 3 && Number.isFinite(e[0]) && typeof e[2] === 'string') {
      events.push({ at: e[0], code: e[1], data: e[2] });
    }
  }
  return { header, events };
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function setState(state, text) {
  root.dataset.state = state;
  statusLine.textContent = text;
  playButton.textContent = state === 'playing' ? 'Pause' : 'Play';
  playButton.disabled = state === 'ended' || state === 'loading';
  endButton.disabled = state === 'ended' || state === 'loading';
}

function progress() {
  const total = cast.events.length ? cast.events[cast.events.length - 1].at : 0;
  return `${clock(cast.at)} / ${clock(total)}`;
}

/** Applies event `e` to the terminal. */
function apply(e) {
  cast.at = e.at;
  if (e.code === 'o') {
    cast.view.term.write(e.data);
  } else if (e.code === 'r') {
    const m = /^(\d+)x(\d+)$/.exec(e.data);
    if (m) cast.view.term.resize(Math.max(1, Number(m[1])), Math.max(1, Number(m[2])));
  } else if (e.code === 'm') {
    cast.marker = e.data;
  }
}

function ended() {
  cast.playing = false;
  clearTimeout(cast.timer);
  setState('ended', `${progress()} · the end${cast.marker ? ` (${cast.marker})` : ''}`);
}

/** Plays from the next event on, waiting as the recording did (scaled, maybe capped). */
function schedule() {
  clearTimeout(cast.timer);
  if (!cast.playing) return;
  if (cast.index >= cast.events.length) {
    ended();
    return;
  }
  const next = cast.events[cast.index];
  let wait = Math.max(0, next.at - cast.at);
  if (skipIdle.checked) wait = Math.min(wait, IDLE_CAP);
  wait /= Number(speedSelect.value) || 1;
  cast.timer = setTimeout(() => {
    // Everything due at the same moment goes at once.
    const due = cast.events[cast.index].at;
    while (cast.index < cast.events.length && cast.events[cast.index].at <= due) {
      apply(cast.events[cast.index]);
      cast.index += 1;
    }
    setState('playing', progress());
    schedule();
  }, wait * 1000);
}

function play() {
  if (!cast || cast.index >= cast.events.length) return;
  cast.playing = true;
  setState('playing', progress());
  schedule();
}

function pause() {
  if (!cast) return;
  cast.playing = false;
  clearTimeout(cast.timer);
  setState('paused', `${progress()} · paused`);
}

function jumpToEnd() {
  if (!cast) return;
  clearTimeout(cast.timer);
  while (cast.index < cast.events.length) {
    apply(cast.events[cast.index]);
    cast.index += 1;
  }
  ended();
}

function unload() {
  if (!cast) return;
  clearTimeout(cast.timer);
  cast.view.dispose();
  box.replaceChildren();
  cast = null;
}

async function load(href, name) {
  unload();
  root.hidden = false;
  title.textContent = name || 'Recording';
  setState('loading', 'Loading…');
  let parsed;
  try {
    const r = await fetch(href, { credentials: 'same-origin' });
    if (!r.ok) throw new Error(`the recording could not be read (HTTP ${r.status})`);
    parsed = parse(await r.text());
  } catch (e) {
    setState('ended', e.message);
    return;
  }
  const { header, events } = parsed;
  const cols = Math.max(1, Math.min(1000, Number(header.width) || 80));
  const rows = Math.max(1, Math.min(1000, Number(header.height) || 24));
  const view = openTerminal(box, { cols, rows, disableStdin: true, cursorBlink: false });
  // Tests (and the browser's console) read the screen from here.
  box.terminal = view.term;
  cast = { view, events, index: 0, timer: null, playing: false, at: 0, marker: null };
  root.scrollIntoView({ block: 'nearest' });
  play();
  if (events.length === 0) ended();
}

// The buttons are in the recordings list, which shell.js replaces after a session.
document.addEventListener('click', (ev) => {
  const button = ev.target instanceof Element ? ev.target.closest('[data-play]') : null;
  if (!button) return;
  ev.preventDefault();
  load(button.dataset.play, button.dataset.title);
});
playButton.addEventListener('click', () => {
  if (cast && cast.playing) pause(); else play();
});
speedSelect.addEventListener('change', () => {
  if (cast && cast.playing) schedule();
});
skipIdle.addEventListener('change', () => {
  if (cast && cast.playing) schedule();
});
endButton.addEventListener('click', jumpToEnd);
closeButton.addEventListener('click', () => {
  unload();
  root.hidden = true;
});
