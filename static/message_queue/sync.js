// Loads & reconciliation: while a load or catch-up is queued or running, ask for the runs'
// progress every second and move the bars (read / total, rate, time left); when none is left
// running, reload so that the buttons and the watermarks are current.
(function () {
  "use strict";

  const script = document.currentScript;
  const url = script.dataset.runsUrl;
  const pollMs = Number(script.dataset.pollMs) || 1000;
  const badgeClass = {
    succeeded: "text-bg-success", failed: "text-bg-danger", cancelled: "text-bg-secondary",
    running: "text-bg-info", queued: "text-bg-light",
  };

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return seconds + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + (seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function show(run) {
    const row = document.querySelector('[data-run="' + run.id + '"]');
    if (!row) return false;
    const badge = row.querySelector("[data-run-status]");
    badge.textContent = run.status_display;
    badge.dataset.runStatus = run.status;
    badge.className = "badge " + (badgeClass[run.status] || "text-bg-light");
    const counting = run.total === null && !run.finished;
    const percent = run.percent === null ? 0 : run.percent;
    row.querySelector("[data-progress]").setAttribute("aria-valuenow", percent);
    const bar = row.querySelector("[data-progress-bar]");
    bar.style.width = (counting ? 100 : percent) + "%";
    bar.classList.toggle("progress-bar-striped", !run.finished);
    bar.classList.toggle("progress-bar-animated", !run.finished);
    bar.classList.toggle("bg-danger", run.status === "failed");
    bar.classList.toggle("bg-secondary", run.status === "cancelled" || counting);
    row.querySelector("[data-run-rows]").textContent = run.read.toLocaleString("en-US") +
      (run.total === null ? "" : " / " + run.total.toLocaleString("en-US"));
    row.querySelector("[data-run-rate]").textContent =
      run.rate ? run.rate.toLocaleString("en-US") + " rows/s" : "—";
    row.querySelector("[data-run-left]").textContent =
      run.finished ? "—" : duration(run.seconds_left);
    const cancel = row.querySelector("[data-cancel]");
    if (cancel) cancel.hidden = run.finished || run.cancel_requested;
    const resume = row.querySelector("[data-resume]");
    if (resume) resume.hidden = !run.resumable;
    const errorRow = document.querySelector('[data-run-error-row="' + run.id + '"]');
    errorRow.hidden = !run.error;
    errorRow.querySelector("[data-run-error]").textContent = run.error;
    return true;
  }

  function update(status) {
    let unfinished = false;
    let unknown = false;
    status.runs.forEach(function (run) {
      if (!show(run)) unknown = true;
      if (!run.finished) unfinished = true;
    });
    return {unfinished: unfinished, unknown: unknown};
  }

  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status) {
          const state = update(status);
          if (!state.unfinished || state.unknown) {
            window.location.reload();
            return;
          }
        }
        window.setTimeout(poll, pollMs);
      })
      .catch(function () { window.setTimeout(poll, pollMs); });
  }

  const initial = JSON.parse(document.getElementById("runs-status").textContent);
  if (update(initial).unfinished) window.setTimeout(poll, pollMs);
})();
