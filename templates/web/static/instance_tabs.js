// The instance page's tabs (WAI-ARIA tabs: arrow keys, Home and End move between them,
// the URL's #hash keeps the open one across reloads) and the install progress shown
// while the server is being installed (its state badge is kept up to date by console.js).

const tabs = [...document.querySelectorAll('[role="tab"][data-tab]')];
const panels = tabs.map((t) => document.getElementById(t.getAttribute('aria-controls')));

function select(name, focus = false) {
  const index = Math.max(0, tabs.findIndex((t) => t.dataset.tab === name));
  tabs.forEach((tab, i) => {
    const on = i === index;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (panels[i]) panels[i].hidden = !on;
  });
  if (focus) tabs[index].focus();
  return tabs[index].dataset.tab;
}

function fromHash() {
  const m = /^#([a-z]+)/.exec(location.hash);
  return m ? m[1] : 'console';
}

tabs.forEach((tab, i) => {
  tab.addEventListener('click', () => {
    const name = select(tab.dataset.tab);
    if (!location.hash.startsWith(`#${name}`)) {
      history.replaceState(null, '', name === 'console' ? location.pathname : `#${name}`);
    }
  });
  tab.addEventListener('keydown', (ev) => {
    const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
    if (!(ev.key in moves)) return;
    ev.preventDefault();
    const to = (moves[ev.key] + tabs.length) % tabs.length;
    select(tabs[to].dataset.tab, true);
    tabs[to].click();
  });
});
window.addEventListener('hashchange', () => select(fromHash()));
select(fromHash());

// Install progress: elapsed time and lines of install output so far.
const badge = document.getElementById('state');
const box = document.getElementById('install-progress');
const text = document.getElementById('install-text');
const out = document.getElementById('console');
let since = null;
let ticker = null;

function showInstall() {
  const installing = badge.textContent.trim() === 'installing';
  box.hidden = !installing;
  if (installing && since === null) {
    since = Date.now();
    ticker = setInterval(showInstall, 1000);
  }
  if (!installing) {
    if (since !== null && badge.textContent.trim() !== 'install_failed') {
      text.textContent = 'Installed.';
    }
    since = null;
    clearInterval(ticker);
    return;
  }
  const secs = Math.round((Date.now() - since) / 1000);
  const lines = out ? out.childElementCount : 0;
  text.textContent = `Installing: ${secs} s, ${lines} lines of install output so far (see the console).`;
}

if (badge && box) {
  new MutationObserver(showInstall).observe(badge, { childList: true, characterData: true, subtree: true });
  showInstall();
}
