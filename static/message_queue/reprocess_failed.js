// Reprocess Failed Messages: tick rows (or the whole page), then confirm what will happen,
// with the number of messages, before the form is posted. Dismissing asks for a reason.
(function () {
  "use strict";

  const form = document.querySelector("[data-reprocess-form]");
  const modalElement = document.querySelector("[data-confirm-modal]");
  if (!form || !modalElement) {
    return;
  }
  const matchingCount = Number(document.currentScript.dataset.matchingCount);
  const modal = new bootstrap.Modal(modalElement);
  const text = modalElement.querySelector("[data-confirm-text]");
  const reasonGroup = modalElement.querySelector("[data-reason-group]");
  const reason = modalElement.querySelector("#dismiss-reason");
  const confirmButton = modalElement.querySelector("[data-confirm]");
  const rowBoxes = () => Array.from(form.querySelectorAll("input[name=ids]"));
  let chosen = null;

  form.querySelector("[data-select-page]").addEventListener("change", (event) => {
    for (const box of rowBoxes()) {
      box.checked = event.target.checked;
    }
  });

  function messagesText(count) {
    return `${count.toLocaleString()} message${count === 1 ? "" : "s"}`;
  }

  for (const button of form.querySelectorAll("[data-open-confirm]")) {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      const scope = button.dataset.scope;
      const count = scope === "matching" ? matchingCount : rowBoxes().filter((box) => box.checked).length;
      if (count === 0) {
        text.textContent = "Tick at least one message first.";
        reasonGroup.hidden = true;
        confirmButton.hidden = true;
        modal.show();
        return;
      }
      const what = scope === "matching" ? `all ${messagesText(count)} that match the filter` : `the ${messagesText(count)} selected`;
      text.textContent = action === "reprocess"
        ? `Reprocess ${what}? Their attempts are reset and they go back to pending.`
        : `Dismiss ${what}? They leave this list and are not sent.`;
      reasonGroup.hidden = action !== "dismiss";
      reason.classList.remove("is-invalid");
      confirmButton.hidden = false;
      confirmButton.textContent = action === "reprocess" ? `Reprocess ${messagesText(count)}` : `Dismiss ${messagesText(count)}`;
      confirmButton.className = action === "reprocess" ? "btn btn-primary" : "btn btn-danger";
      chosen = { action, scope };
      modal.show();
    });
  }

  confirmButton.addEventListener("click", () => {
    if (!chosen) {
      return;
    }
    if (chosen.action === "dismiss" && !reason.value.trim()) {
      reason.classList.add("is-invalid");
      reason.focus();
      return;
    }
    form.elements.namedItem("action").value = chosen.action;
    form.elements.namedItem("scope").value = chosen.scope;
    form.elements.namedItem("reason").value = reason.value.trim();
    confirmButton.disabled = true;
    form.submit();
  });
})();
