// Copy buttons: <button data-copy="ID"> copies the value (or text) of the element ID and
// says so in the nearest .copy-status. Without clipboard access (plain HTTP off
// localhost) the text is selected instead, so Ctrl+C finishes the job.

function statusFor(button) {
  const box = button.closest('section, .secret-box, div');
  return box ? box.querySelector('.copy-status') : null;
}

async function copy(button) {
  const target = document.getElementById(button.dataset.copy);
  if (!target) return;
  const text = 'value' in target ? target.value : target.textContent;
  const status = statusFor(button);
  try {
    await navigator.clipboard.writeText(text);
    if (status) status.textContent = 'Copied.';
    button.textContent = 'Copied';
  } catch {
    if (typeof target.select === 'function') {
      target.classList.remove('visually-hidden');
      target.focus();
      target.select();
    }
    if (status) status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
  }
}

for (const button of document.querySelectorAll('button[data-copy]')) {
  button.addEventListener('click', () => copy(button));
}
