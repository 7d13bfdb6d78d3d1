// The "New integration" form: only the chosen type's fieldset is shown (and sent: the
// others are disabled), and its required fields are marked required. Without this
// script every type's fieldset shows and the panel uses the chosen type's fields only.

const select = document.getElementById('f-type');
const fieldsets = document.querySelectorAll('fieldset.integration-type');

function showChosen() {
  for (const fieldset of fieldsets) {
    const chosen = fieldset.dataset.type === select.value;
    fieldset.hidden = !chosen;
    fieldset.disabled = !chosen;
    for (const input of fieldset.querySelectorAll('input[data-required]')) {
      input.required = chosen && input.dataset.required === 'true';
    }
  }
}

if (select) {
  select.addEventListener('change', showChosen);
  showChosen();
}
