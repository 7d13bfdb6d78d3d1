// Basic ANSI SGR styling for console lines: bold (1), the 16 foreground colours
// (30-37, 90-97), defaults (0, 22, 39). Other escape sequences are dropped. The result is
// built from text nodes, so console text is never parsed as HTML.

// CSI sequences (SGR and others), OSC sequences, and lone two-byte escapes.
const ESCAPES = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
// Control characters other than tab.
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** Applies the parameters of one SGR sequence to `style`. */
function apply(style, params) {
  const codes = params === '' ? [0] : params.split(';').map((p) => Number.parseInt(p || '0', 10));
  for (let i = 0; i < codes.length; i += 1) {
    const c = codes[i];
    if (c === 0) { style.bold = false; style.fg = null; }
    else if (c === 1) style.bold = true;
    else if (c === 22) style.bold = false;
    else if (c === 39) style.fg = null;
    else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) style.fg = c;
    else if (c === 38 || c === 48) {
      // Extended colours are not shown; skip their arguments.
      i += codes[i + 1] === 5 ? 2 : codes[i + 1] === 2 ? 4 : 0;
    }
  }
}

/**
 * Splits a line into styled runs.
 * @returns {{text: string, classes: string[]}[]}
 */
export function parse(line) {
  const runs = [];
  const style = { bold: false, fg: null };
  const push = (text) => {
    const clean = text.replace(CONTROLS, '');
    if (!clean) return;
    const classes = [];
    if (style.bold) classes.push('ansi-bold');
    if (style.fg !== null) classes.push(`ansi-${style.fg}`);
    runs.push({ text: clean, classes });
  };
  let last = 0;
  for (const m of line.matchAll(ESCAPES)) {
    push(line.slice(last, m.index));
    if (m[2] === 'm') apply(style, m[1]);
    last = m.index + m[0].length;
  }
  push(line.slice(last));
  return runs;
}

/** A fragment of text nodes and classed spans for `line`. */
export function render(line) {
  const fragment = document.createDocumentFragment();
  for (const run of parse(line)) {
    if (run.classes.length === 0) {
      fragment.append(document.createTextNode(run.text));
    } else {
      const span = document.createElement('span');
      span.className = run.classes.join(' ');
      span.textContent = run.text;
      fragment.append(span);
    }
  }
  return fragment;
}
