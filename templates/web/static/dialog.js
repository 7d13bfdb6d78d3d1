// One accessible dialog (`#ask`, a native <dialog>) for confirmations and short
// questions: a title, a text, optionally a text field and a checkbox. Escape cancels.

const dialog = document.getElementById('ask');
const form = document.getElementById('ask-form');
const title = document.getElementById('ask-title');
const text = document.getElementById('ask-text');
const fieldRow = document.getElementById('ask-field');
const label = document.getElementById('ask-label');
const input = document.getElementById('ask-input');
const checkRow = document.getElementById('ask-check-row');
const check = document.getElementById('ask-check');
const checkLabel = document.getElementById('ask-check-label');
const ok = document.getElementById('ask-ok');

/**
 * Asks; resolves to `{ ok, value, checked }`.
 * @param {{title: string, text?: string, input?: {label: string, value?: string},
 *          check?: {label: string}, ok?: string, danger?: boolean}} q
 */
export function ask(q) {
  title.textContent = q.title;
  text.textContent = q.text || '';
  fieldRow.hidden = !q.input;
  input.required = Boolean(q.input);
  if (q.input) {
    label.textContent = q.input.label;
    input.value = q.input.value || '';
  }
  checkRow.hidden = !q.check;
  check.checked = false;
  if (q.check) checkLabel.textContent = q.check.label;
  ok.textContent = q.ok || 'OK';
  ok.className = q.danger ? 'danger' : '';
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener('close', done);
      resolve({ ok: dialog.returnValue === 'ok', value: input.value, checked: check.checked });
    };
    dialog.addEventListener('close', done);
    dialog.returnValue = 'cancel';
    dialog.showModal();
    if (q.input) {
      input.focus();
      input.select();
    } else {
      ok.focus();
    }
  });
}

form.addEventListener('submit', (ev) => {
  const cancel = ev.submitter && ev.submitter.value === 'cancel';
  if (!cancel && !fieldRow.hidden && input.value.trim() === '') {
    ev.preventDefault();
    input.focus();
  }
});
