// @ts-check
// Sessions: a live table (polled for memory/CPU, status pushed over the WebSocket), in full
// on the Sessions page and in short on the landing page.
import { actionButtons, createSessionDialog } from "./actions.js";
import { get } from "./api.js";
import { app, onGatewayEvent } from "./state.js";
import { ago, badge, bytes, duration, errorChip, h, replace, toast } from "./util.js";

/** @typedef {import("./state.js").SessionView} SessionView */

const REFRESH_MS = 5000;

/**
 * One column: its header and the cell content for a session (the row header is the id).
 * @typedef {import("./util.js").Child} Child
 * @typedef {[label: string, cell: (s: SessionView, reload: () => void) => Child]} Column
 */

/** @type {Record<string, Column>} */
const COLUMN = {
  status: ["Status", (s) => [badge(s.status, s.hibernating), errorChip(s.error)]],
  phone: ["Phone", (s) => (s.phone ? `+${s.phone}` : "–")],
  node: ["Node", (s) => s.node || "–"],
  memory: ["Memory (PSS)", (s) => bytes(s.worker.memory.pss)],
  rss: ["RSS", (s) => bytes(s.worker.memory.rss)],
  pss: ["PSS", (s) => bytes(s.worker.memory.pss)],
  uss: ["USS", (s) => bytes(s.worker.memory.uss)],
  cpu: ["CPU", (s) => (s.worker.pid ? `${s.worker.cpu_percent.toFixed(1)}%` : "–")],
  uptime: ["Uptime", (s) => duration(s.uptime_s)],
  restarts: ["Restarts", (s) => s.worker.restarts],
  activity: ["Last activity", (s) => ago(s.last_activity)],
  actions: ["Actions", (s, reload) => actionButtons(s, reload)],
};
const FULL = ["status", "phone", "rss", "pss", "uss", "cpu", "uptime", "restarts", "activity",
  "actions"];
const SHORT = ["status", "phone", "memory", "activity", "actions"];

/** The "New session" button; a created session opens its page. */
export function newSessionButton() {
  return h("button", { type: "button", class: "btn btn-primary", id: "new-session",
    onclick: () => createSessionDialog((id) => {
      location.hash = `#/sessions/${encodeURIComponent(id)}`;
    }) }, "New session");
}

/**
 * The live sessions table with the given columns, kept up to date until the cleanup runs.
 * @param {string} id the table's element id
 * @param {string[]} columns keys of COLUMN
 * @returns {{ element: HTMLElement, cleanup: () => void }}
 */
export function sessionsTable(id, columns) {
  // In a cluster, which node runs each session comes right after its status.
  const keys = app.info?.node ? [columns[0], "node", ...columns.slice(1)] : columns;
  const chosen = keys.map((key) => COLUMN[key]);
  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No sessions yet. Create one to start.");
  const table = h("table", { class: "table sessions-table", id },
    h("caption", { class: "visually-hidden" }, "Sessions, with live status and resources"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Session"),
      chosen.map(([label]) => h("th", { scope: "col" }, label)))),
    body);

  /** @type {SessionView[]} */
  let sessions = [];
  let failed = false;

  /** @param {SessionView} s */
  function row(s) {
    const link = h("a", { href: `#/sessions/${encodeURIComponent(s.id)}` }, s.id);
    return h("tr", { "data-session": s.id },
      h("th", { scope: "row", "data-label": "Session" }, link),
      chosen.map(([label, cell]) => h("td", { "data-label": label }, cell(s, refresh))));
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
  return {
    element: h("div", {}, h("div", { class: "table-wrap" }, table), empty),
    cleanup: () => {
      clearInterval(timer);
      clearTimeout(pending);
      off();
    },
  };
}

/** The Sessions page: every column. @param {HTMLElement} root */
export function renderSessions(root) {
  const table = sessionsTable("sessions-table", FULL);
  replace(root,
    h("div", { class: "page-head" }, h("h1", {}, "Sessions"), newSessionButton()),
    table.element);
  return table.cleanup;
}

/** The landing page's table: what an operator checks first. */
export const shortSessionsTable = () => sessionsTable("overview-sessions", SHORT);
