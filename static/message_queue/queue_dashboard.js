// The queue dashboard refreshes itself: every few seconds it fetches the figures as JSON
// and replaces the texts of the cells and the chart's data, without reloading the page.
(function () {
  "use strict";

  const root = document.querySelector("[data-queue-dashboard]");
  if (!root) {
    return;
  }
  const url = root.dataset.refreshUrl;
  const seconds = Math.max(1, Number(root.dataset.refreshSeconds) || 10);
  const refreshedAt = root.querySelector("[data-refreshed-at]");
  const refreshError = root.querySelector("[data-refresh-error]");
  const chart = drawChart(JSON.parse(document.getElementById("queue-chart-data").textContent));
  let refreshes = 0;

  function drawChart(data) {
    const canvas = document.getElementById("queue-chart");
    if (!canvas || typeof window.Chart === "undefined") {
      return null;
    }
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Sent", data: data.sent, backgroundColor: "rgba(25, 135, 84, 0.7)", yAxisID: "records" },
          { label: "Failed", data: data.failed, backgroundColor: "rgba(220, 53, 69, 0.8)", yAxisID: "records" },
          {
            label: "Backlog", data: data.backlog, type: "line", borderColor: "rgb(13, 110, 253)",
            backgroundColor: "rgb(13, 110, 253)", yAxisID: "backlog", spanGaps: true, tension: 0.2,
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          records: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "records per hour" } },
          backlog: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "backlog" } },
        },
      },
    });
  }

  function showChart(data) {
    if (!chart) {
      return;
    }
    chart.data.labels = data.labels;
    chart.data.datasets[0].data = data.sent;
    chart.data.datasets[1].data = data.failed;
    chart.data.datasets[2].data = data.backlog;
    chart.update();
  }

  function show(data) {
    for (const [id, text] of Object.entries(data.cells)) {
      for (const element of root.querySelectorAll(`[data-cell="${CSS.escape(id)}"]`)) {
        if (element.textContent !== text) {
          element.textContent = text;
        }
      }
    }
    for (const profile of data.profiles) {
      for (const row of profile.entities) {
        const tr = root.querySelector(`[data-row="${CSS.escape(profile.name + ":" + row.entity)}"]`);
        if (tr) {
          tr.classList.toggle("table-danger", row.outage_error !== null);
        }
      }
    }
    showChart(data.chart);
    refreshedAt.textContent = data.refreshed;
    refreshes += 1;
    root.dataset.refreshes = String(refreshes);
  }

  async function refresh() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok || !(response.headers.get("Content-Type") || "").includes("json")) {
        throw new Error(`HTTP ${response.status}`);
      }
      show(await response.json());
      refreshError.hidden = true;
    } catch (error) {
      refreshError.hidden = false;
    } finally {
      window.setTimeout(refresh, seconds * 1000);
    }
  }

  window.setTimeout(refresh, seconds * 1000);
})();
