// A form whose fields depend on a choice (an integration's type, a credential's
// provider): `<select data-chooses="CSS of the fieldsets">`, each fieldset carrying
// `data-choice="<option value>"`. Only the chosen fieldset is shown (and sent: the others
// are disabled), and its fields marked `data-required="true"` are required. Without this
// script every fieldset shows and the panel uses the chosen one's fields only.

for (const select of document.querySelectorAll('select[data-chooses]')) {
  const fieldsets = document.querySelectorAll(select.dataset.chooses);
  const showChosen = () => {
    for (const fieldset of fieldsets) {
      const chosen = fieldset.dataset.choice === select.value;
      fieldset.hidden = !chosen;
      fieldset.disabled = !chosen;
      for (const field of fieldset.querySelectorAll('[data-required]')) {
        field.required = chosen && field.dataset.required === 'true';
      }
    }
  };
  select.addEventListener('change', showChosen);
  showChosen();
}
