// xterm.js terminals under the pages' Content-Security-Policy. xterm.js (loaded by the
// page with classic <script> tags: it is a UMD script that sets window.Terminal, and its
// fit addon window.FitAddon) styles each terminal with <style> elements it writes, which
// the policy (style-src 'self', no inline styles) refuses to apply. Their text is copied
// into a constructed stylesheet instead, which the policy allows, and kept in step as
// xterm.js rewrites it (on resizes and theme changes).

/** The colours of the page's console. */
const THEME = { background: '#11151a', foreground: '#d8dee6', cursor: '#d8dee6' };

/**
 * A terminal opened in `element`: `{ term, fit, dispose }`; `fit` is the fit addon when
 * `fitted`, else null (the terminal keeps the size of `options`).
 */
export function openTerminal(element, options = {}, fitted = false) {
  if (typeof window.Terminal !== 'function') throw new Error('xterm.js did not load');
  const term = new window.Terminal({
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
    fontSize: 14,
    theme: THEME,
    scrollback: 5000,
    ...options,
  });
  const fit = fitted && window.FitAddon ? new window.FitAddon.FitAddon() : null;
  if (fit) term.loadAddon(fit);
  const sheet = new CSSStyleSheet();
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const copy = () => {
    const text = [...element.querySelectorAll('style')].map((s) => s.textContent).join('\n');
    try { sheet.replaceSync(text); } catch { /* a rule the browser does not know */ }
  };
  const watch = new MutationObserver(copy);
  watch.observe(element, { subtree: true, childList: true, characterData: true });
  term.open(element);
  copy();
  if (fit) fit.fit();
  return {
    term,
    fit,
    dispose() {
      watch.disconnect();
      term.dispose();
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
    },
  };
}
