// Initialize / Deactivate: while Acumatica publishes, ask for the run's progress every few
// seconds; when the run ends, reload so that the state, the schedulers and the history are
// shown as they are. A manager can show and hide the push secret.
(function () {
  "use strict";

  const script = document.currentScript;
  const url = script.dataset.runUrl;
  const pollMs = Number(script.dataset.pollMs) || 2000;
  const area = document.querySelector("[data-run]");
  const initial = JSON.parse(document.getElementById("run-status").textContent);
  const badgeClass = {succeeded: "text-bg-success", failed: "text-bg-danger"};

  function show(run) {
    area.hidden = false;
    const badge = area.querySelector("[data-run-status]");
    badge.textContent = run.status_display;
    badge.dataset.runStatus = run.status;
    badge.className = "badge " + (badgeClass[run.status] || "text-bg-info");
    area.querySelector("[data-run-progress]").textContent = run.progress;
    area.querySelector("[data-run-spinner]").hidden = run.finished;
    const body = area.querySelector("[data-run-log] tbody");
    body.replaceChildren(...run.log.map(function (entry) {
      const row = document.createElement("tr");
      row.dataset.logType = entry.type;
      if (entry.type === "error") row.className = "table-danger";
      [entry.timestamp, entry.type, entry.message].forEach(function (text, index) {
        const cell = document.createElement("td");
        if (index === 0) cell.className = "text-nowrap";
        cell.textContent = text;
        row.appendChild(cell);
      });
      return row;
    }));
  }

  function poll(runId) {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && status.run && status.run.id === runId) {
          show(status.run);
          if (status.run.finished) { window.location.reload(); return; }
        }
        window.setTimeout(function () { poll(runId); }, pollMs);
      })
      .catch(function () { window.setTimeout(function () { poll(runId); }, pollMs); });
  }

  if (area && initial.run && !initial.run.finished) {
    window.setTimeout(function () { poll(initial.run.id); }, pollMs);
  }

  const toggle = document.getElementById("push-secret-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const field = document.getElementById("push-secret");
      const hidden = field.type === "password";
      field.type = hidden ? "text" : "password";
      toggle.textContent = hidden ? "Hide" : "Show";
    });
  }
})();
