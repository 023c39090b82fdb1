// @ts-check
// Sessions: a live table (polled for memory/CPU, status pushed over the WebSocket).
import { actionButtons, createSessionDialog } from "./actions.js";
import { get } from "./api.js";
import { onGatewayEvent } from "./state.js";
import { ago, badge, bytes, duration, h, replace, toast } from "./util.js";

const REFRESH_MS = 5000;
const COLUMNS = ["Session", "Status", "Phone", "RSS", "PSS", "USS", "CPU", "Uptime",
  "Restarts", "Last activity", "Actions"];

export function renderSessions(root) {
  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No sessions yet. Create one to start.");
  const table = h("table", { class: "table sessions-table", id: "sessions-table" },
    h("caption", { class: "visually-hidden" }, "Sessions, with live status and resources"),
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    body);
  replace(root,
    h("div", { class: "page-head" },
      h("h1", {}, "Sessions"),
      h("button", { type: "button", class: "btn btn-primary", id: "new-session",
        onclick: () => createSessionDialog((id) => {
          location.hash = `#/sessions/${encodeURIComponent(id)}`;
        }) }, "New session")),
    h("div", { class: "table-wrap" }, table),
    empty);

  let sessions = [];
  let failed = false;

  function row(s) {
    const cell = (label, ...content) => h("td", { "data-label": label }, ...content);
    const link = h("a", { href: `#/sessions/${encodeURIComponent(s.id)}` }, s.id);
    return h("tr", { "data-session": s.id },
      h("th", { scope: "row", "data-label": "Session" }, link),
      cell("Status", badge(s.status, s.hibernating)),
      cell("Phone", s.phone ? `+${s.phone}` : "–"),
      cell("RSS", bytes(s.worker.memory.rss)),
      cell("PSS", bytes(s.worker.memory.pss)),
      cell("USS", bytes(s.worker.memory.uss)),
      cell("CPU", s.worker.pid ? `${s.worker.cpu_percent.toFixed(1)}%` : "–"),
      cell("Uptime", duration(s.uptime_s)),
      cell("Restarts", s.worker.restarts),
      cell("Last activity", ago(s.last_activity)),
      cell("Actions", actionButtons(s, refresh)));
  }

  function draw() {
    // Keep keyboard focus on the same control across redraws.
    const focused = document.activeElement;
    const focusKey = focused instanceof HTMLElement && body.contains(focused)
      ? [focused.closest("tr")?.dataset.session ?? "", focused.dataset.action || "link"] : null;
    replace(body, sessions.map(row));
    empty.hidden = sessions.length > 0;
    table.hidden = sessions.length === 0;
    if (focusKey) {
      const tr = body.querySelector(`tr[data-session="${CSS.escape(focusKey[0])}"]`);
      const target = focusKey[1] === "link" ? tr?.querySelector("a")
        : tr?.querySelector(`[data-action="${focusKey[1]}"]`);
      if (target instanceof HTMLElement) target.focus();
    }
  }

  async function refresh() {
    try {
      sessions = await get("/api/dashboard/sessions");
      draw();
      failed = false;
    } catch (error) {
      if (!failed && error.status !== 401) toast(`Sessions: ${error.message}`, "error");
      failed = true;
    }
  }

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;
  const off = onGatewayEvent((event) => {
    if (event.event !== "session.status") return;
    const s = sessions.find((x) => x.id === event.session_id);
    if (s && event.payload?.status) {
      s.status = event.payload.status;
      s.hibernating = Boolean(event.payload.hibernating);
      draw();
    }
    clearTimeout(pending);
    pending = setTimeout(refresh, 400);
  });
  const timer = setInterval(refresh, REFRESH_MS);
  refresh();
  return () => {
    clearInterval(timer);
    clearTimeout(pending);
    off();
  };
}
