// @ts-check
// Overview, the landing page: the sessions table first (what an operator checks), then the
// totals and the three charts (memory, messages per hour, connected sessions).
import { get } from "./api.js";
import { connectedChart, memoryChart, messagesChart } from "./charts.js";
import { newSessionButton, shortSessionsTable } from "./sessions.js";
import { onGatewayEvent } from "./state.js";
import { bytes, h, replace, toast } from "./util.js";

const RANGES = [[15, "15 min"], [60, "1 hour"], [360, "6 hours"], [1440, "24 hours"]];
const REFRESH_MS = 5000;

function stat(label, id) {
  return h("div", { class: "card stat" },
    h("div", { class: "stat-label", id: `${id}-label` }, label),
    h("div", { class: "stat-value", id, "aria-labelledby": `${id}-label` }, "–"));
}

function chartCard(title, id, note) {
  return h("section", { class: "card chart-card", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    note ? h("p", { class: "muted small" }, note) : null,
    h("div", { class: "chart", id, role: "img", "aria-label": title }));
}

export function renderOverview(root) {
  let minutes = Number(sessionStorage.getItem("overview-minutes")) || 60;
  const select = h("select", { id: "range", "aria-label": "Time range" },
    RANGES.map(([value, label]) => h("option", { value, selected: value === minutes }, label)));
  const table = shortSessionsTable();
  replace(root,
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), newSessionButton()),
    h("section", { class: "overview-sessions", "aria-labelledby": "overview-sessions-title" },
      h("div", { class: "section-head" },
        h("h2", { id: "overview-sessions-title" }, "Sessions"),
        h("a", { href: "#/sessions" }, "All columns (RSS, USS, CPU, uptime, restarts)")),
      table.element),
    h("div", { class: "section-head" },
      h("h2", {}, "Totals and charts"),
      h("div", { class: "field inline" }, h("label", { for: "range" }, "Range"), select)),
    h("section", { class: "stats", "aria-label": "Totals" },
      stat("Sessions", "stat-sessions"),
      stat("Connected", "stat-connected"),
      stat("Total memory (PSS)", "stat-memory"),
      stat("Received today", "stat-received"),
      stat("Sent today", "stat-sent")),
    h("div", { class: "charts" },
      chartCard("Memory per session (PSS)", "chart-memory"),
      chartCard("Messages per hour", "chart-messages", "At least the last 24 hours."),
      chartCard("Connected sessions", "chart-connected")));

  const charts = {
    memory: memoryChart(root.querySelector("#chart-memory")),
    messages: messagesChart(root.querySelector("#chart-messages")),
    connected: connectedChart(root.querySelector("#chart-connected")),
  };
  let failed = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;

  async function refresh() {
    try {
      const tz = new Date().getTimezoneOffset();
      const [stats, metrics] = await Promise.all([
        get(`/api/dashboard/stats?tz_offset=${tz}`),
        get(`/api/dashboard/metrics?minutes=${minutes}`),
      ]);
      root.querySelector("#stat-sessions").textContent = stats.sessions;
      root.querySelector("#stat-connected").textContent = stats.connected;
      root.querySelector("#stat-memory").textContent = bytes(stats.memory.pss);
      root.querySelector("#stat-received").textContent = stats.messages_today.received;
      root.querySelector("#stat-sent").textContent = stats.messages_today.sent;
      /** @type {[number, number]} */
      const window = [metrics.since, metrics.until];
      charts.memory.update(metrics.memory, window);
      charts.messages.update(metrics.messages_per_hour);
      charts.connected.update(metrics.connected, window);
      failed = false;
    } catch (error) {
      if (!failed && error.status !== 401) toast(`Overview: ${error.message}`, "error");
      failed = true;
    }
  }

  select.addEventListener("change", () => {
    minutes = Number(select.value);
    sessionStorage.setItem("overview-minutes", String(minutes));
    refresh();
  });
  const timer = setInterval(refresh, REFRESH_MS);
  const off = onGatewayEvent((event) => {
    if (event.event === "session.status" || event.event.startsWith("message")) {
      clearTimeout(pending);
      pending = setTimeout(refresh, 300);
    }
  });
  refresh();
  return () => {
    clearInterval(timer);
    clearTimeout(pending);
    off();
    table.cleanup();
    Object.values(charts).forEach((chart) => chart.destroy());
  };
}
