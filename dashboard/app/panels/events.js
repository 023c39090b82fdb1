// @ts-check
// The session's live events and logs: the last 200 from the history, then the stream,
// filtered by kind, log level and text; pausing keeps new events in a backlog.
import { get } from "../api.js";
import { clock, h, panel, replace, toast } from "../util.js";

/** @typedef {import("../state.js").GatewayEvent} GatewayEvent */

const MAX_EVENTS = 1000;
const SHOWN_EVENTS = 400;
const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const CATEGORIES = [["status", "Status & QR"], ["message", "Messages"], ["log", "Logs"],
  ["other", "Other"]];

/** @param {string} name */
function category(name) {
  if (name === "log") return "log";
  if (name.startsWith("session.")) return "status";
  if (name.startsWith("message")) return "message";
  return "other";
}

/** @param {GatewayEvent} event */
function summary(event) {
  const p = event.payload || {};
  switch (event.event) {
    case "log":
      return `[${p.level}] ${p.logger}: ${p.message}`;
    case "session.status":
      return `${p.previous ? `${p.previous} → ` : ""}${p.status}${p.error ? ` (${p.error})` : ""}`;
    case "session.qr":
      return `new QR code (valid ${p.qr_duration ?? "?"} s)`;
    case "message":
      return `${p.is_from_me ? "to" : "from"} ${p.from || p.chat_id || "?"}: ${
        p.message?.text ?? p.text ?? p.body ?? "(non-text message)"}`;
    case "message.sent":
      return `sent ${p.message_id || p.id || ""} to ${p.to || p.chat_id || "?"}`;
    default: {
      const text = JSON.stringify(p);
      return text.length > 160 ? `${text.slice(0, 160)}…` : text;
    }
  }
}

/** @param {GatewayEvent} event */
function eventRow(event) {
  const level = event.event === "log" ? (event.payload?.level || "").toLowerCase() : "";
  return h("li", { class: `event event-${category(event.event)} ${level ? `level-${level}` : ""}`,
    "data-event": event.event },
  h("details", {},
    h("summary", {},
      h("time", { datetime: event.timestamp }, clock(event.timestamp)), " ",
      h("span", { class: "event-name" }, event.event), " ",
      h("span", { class: "event-summary" }, summary(event))),
    h("pre", { class: "mono" }, JSON.stringify(event, null, 2))));
}

/**
 * @param {HTMLElement} parent
 * @param {import("../session.js").SessionContext} ctx
 * @returns {() => void} cleanup
 */
export function mountEvents(parent, ctx) {
  let paused = false;
  /** @type {GatewayEvent[]} */
  let backlog = [];
  /** @type {GatewayEvent[]} */
  let events = [];

  const filterBoxes = CATEGORIES.map(([value, label]) => {
    const box = h("input", { type: "checkbox", value, checked: true, id: `filter-${value}` });
    box.addEventListener("change", redrawEvents);
    return h("span", { class: "check" }, box, h("label", { for: `filter-${value}` }, label));
  });
  const levelSelect = h("select", { id: "filter-level", onchange: redrawEvents },
    LEVELS.map((l) => h("option", { value: l, selected: l === "INFO" }, l)));
  const search = h("input", { type: "search", id: "filter-text", placeholder: "text",
    oninput: redrawEvents });
  const pauseButton = h("button", { type: "button", class: "btn btn-small", id: "pause",
    "aria-pressed": "false", onclick: togglePause }, "Pause");
  const eventList = h("ol", { class: "event-list", id: "event-list", role: "log",
    "aria-label": `Events of ${ctx.id}`, "aria-live": "off" });
  const eventState = h("span", { class: "muted small", id: "event-state" });
  const eventsPanel = panel("events-panel", "Live events and logs",
    h("div", { class: "event-toolbar" },
      h("fieldset", { class: "filters" }, h("legend", {}, "Show"), filterBoxes),
      h("div", { class: "field inline" }, h("label", { for: "filter-level" }, "Min log level"),
        levelSelect),
      h("div", { class: "field inline" }, h("label", { for: "filter-text" }, "Filter"), search),
      pauseButton,
      h("button", { type: "button", class: "btn btn-small", onclick: () => {
        events = [];
        backlog = [];
        redrawEvents();
      } }, "Clear"),
      eventState),
    eventList);
  parent.append(eventsPanel);

  /** @param {GatewayEvent} event */
  function visible(event) {
    const cat = category(event.event);
    const box = eventsPanel.querySelector(`#filter-${cat}`);
    if (!(box instanceof HTMLInputElement) || !box.checked) return false;
    if (cat === "log") {
      const level = LEVELS.indexOf(event.payload?.level);
      if (level >= 0 && level < LEVELS.indexOf(levelSelect.value)) return false;
    }
    const text = search.value.trim().toLowerCase();
    return !text || `${event.event} ${summary(event)}`.toLowerCase().includes(text);
  }

  function redrawEvents() {
    const shown = events.filter(visible).slice(-SHOWN_EVENTS).reverse();
    replace(eventList, shown.length ? shown.map(eventRow)
      : h("li", { class: "muted empty" }, "No events to show."));
    eventState.textContent = paused ? `paused — ${backlog.length} new` : "";
  }

  /** @param {GatewayEvent} event */
  function addEvent(event) {
    if (events.some((e) => e.id && e.id === event.id)) return;
    events.push(event);
    if (events.length > MAX_EVENTS) events = events.slice(-MAX_EVENTS);
  }

  function togglePause() {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      backlog.forEach(addEvent);
      backlog = [];
    }
    redrawEvents();
  }

  async function loadHistory() {
    try {
      /** @type {GatewayEvent[]} */
      const history = await get(`/api/dashboard/sessions/${ctx.enc}/events?limit=200`);
      history.forEach(addEvent);
    } catch (error) {
      toast(`Events: ${error.message}`, "error");
    }
    redrawEvents();
  }

  const offEvent = ctx.onEvent((event) => {
    if (paused) {
      backlog.push(event);
      eventState.textContent = `paused — ${backlog.length} new`;
    } else {
      addEvent(event);
      redrawEvents();
    }
  });
  const offStream = ctx.onStream((state) => {
    eventState.textContent = state === "live" ? "" : state;
  });
  ctx.ready.then((found) => {
    if (found) loadHistory();
  });
  return () => {
    offEvent();
    offStream();
  };
}
