// The sandbox page refreshes itself: every few seconds it fetches both catalogs and the latest
// push notifications as JSON, rewrites the tables, and marks the values that changed.
(function () {
  "use strict";

  const root = document.querySelector("[data-sandbox-catalog]");
  if (!root) {
    return;
  }
  const url = root.dataset.refreshUrl;
  const seconds = Math.max(1, Number(root.dataset.refreshSeconds) || 3);
  const refreshedAt = root.querySelector("[data-refreshed-at]");
  const refreshError = root.querySelector("[data-refresh-error]");
  const notPublished = root.querySelector("[data-not-published]");
  const CHANGED_CLASS = "table-warning";

  function price(value) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(2);
  }

  function quantity(value) {
    if (value === null || value === undefined) {
      return "—";
    }
    return Number.isInteger(value) ? String(value) : Number(value).toFixed(2);
  }

  function cell(tag, text, attributes) {
    const element = document.createElement(tag);
    element.textContent = text;
    for (const [name, value] of Object.entries(attributes || {})) {
      element.setAttribute(name, value);
    }
    return element;
  }

  // Rewrite one catalog's rows; a cell whose text differs from the one it replaces is marked.
  function showCatalog(table, prefix, rows, valuesKey, valueName) {
    const previous = new Map();
    for (const element of table.querySelectorAll("[data-cell]")) {
      previous.set(element.dataset.cell, element.textContent);
    }
    const body = document.createElement("tbody");
    for (const row of rows) {
      const line = document.createElement("tr");
      line.dataset.sku = row.sku;
      line.appendChild(cell("th", row.sku, { scope: "row" }));
      const cells = [[`${prefix}:${row.sku}:price`, price(row.price)]];
      row[valuesKey].forEach((value, index) => {
        cells.push([`${prefix}:${row.sku}:${valueName}:${index}`, quantity(value)]);
      });
      for (const [id, text] of cells) {
        const element = cell("td", text, { class: "text-end", "data-cell": id });
        if (previous.has(id) && previous.get(id) !== text) {
          element.classList.add(CHANGED_CLASS);
          element.dataset.changed = "";
        }
        line.appendChild(element);
      }
      body.appendChild(line);
    }
    table.querySelector("tbody").replaceWith(body);
  }

  function showDeliveries(table, deliveries) {
    const body = document.createElement("tbody");
    if (!deliveries.length) {
      body.appendChild(document.createElement("tr")).appendChild(
        cell("td", "None yet.", { colspan: "5", class: "text-muted" })
      );
    }
    for (const delivery of deliveries) {
      const line = document.createElement("tr");
      line.className = delivery.delivered ? "table-success" : "table-danger";
      line.appendChild(cell("td", delivery.sent_at));
      const name = cell("td", `${delivery.push_notification} `);
      name.appendChild(cell("span", `→ ${delivery.address}`, { class: "text-muted small" }));
      line.appendChild(name);
      line.appendChild(cell("td", delivery.rows.join("; ")));
      line.appendChild(cell("td", String(delivery.attempts)));
      const status = delivery.status ? `HTTP ${delivery.status}` : delivery.error;
      line.appendChild(cell("td", status, { "data-status": "" }));
      body.appendChild(line);
    }
    table.querySelector("tbody").replaceWith(body);
  }

  function show(data) {
    showCatalog(root.querySelector("[data-acumatica-catalog]"), "acumatica", data.acumatica, "stock", "stock");
    showCatalog(root.querySelector("[data-magento-catalog]"), "magento", data.magento, "quantities", "qty");
    showDeliveries(root.querySelector("[data-deliveries]"), data.deliveries);
    if (notPublished) {
      notPublished.hidden = data.published;
    }
    refreshedAt.textContent = new Date().toLocaleTimeString();
  }

  async function refresh() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      show(await response.json());
      refreshError.hidden = true;
    } catch (error) {
      refreshError.hidden = false;
    }
  }

  window.setInterval(refresh, seconds * 1000);
})();
