// Small form helpers, no inline script anywhere (the CSP forbids it):
// - <form data-confirm="Question?"> asks before it is sent;
// - <input type="file" data-load-into="ID"> puts the chosen file's text into the
//   textarea ID (an egg to import), so the form posts it like pasted JSON.

for (const form of document.querySelectorAll('form[data-confirm]')) {
  form.addEventListener('submit', (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

const MAX_FILE = 1024 * 1024;

for (const input of document.querySelectorAll('input[type="file"][data-load-into]')) {
  input.addEventListener('change', async () => {
    const target = document.getElementById(input.dataset.loadInto);
    const file = input.files && input.files[0];
    if (!target || !file) return;
    if (file.size > MAX_FILE) {
      input.setCustomValidity('This file is larger than 1 MiB: it is not an egg.');
      input.reportValidity();
      return;
    }
    input.setCustomValidity('');
    target.value = await file.text();
    target.dispatchEvent(new Event('input'));
  });
}
