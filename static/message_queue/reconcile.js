// Reconciliation: while the report runs, look every second; reload when it is done.
(function () {
  "use strict";

  const script = document.currentScript;
  const url = script.dataset.statusUrl;
  const pollMs = Number(script.dataset.pollMs) || 1000;
  const initial = JSON.parse(document.getElementById("report-status").textContent);
  if (!initial || initial.finished) return;

  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && status.report && (status.report.id !== initial.id || status.report.finished)) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, pollMs);
      })
      .catch(function () { window.setTimeout(poll, pollMs); });
  }

  window.setTimeout(poll, pollMs);
})();
