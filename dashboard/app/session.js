// @ts-check
// One session's page: the head (status, actions, export) and its panels (panels/*.js). This
// module loads the session and owns its event stream; each panel gets both through a
// SessionContext and returns its own cleanup, all of which run when the view changes.
import { actionButtons } from "./actions.js";
import { download, get, openEvents } from "./api.js";
import { mountAccount } from "./panels/account.js";
import { mountConfig } from "./panels/config.js";
import { mountDeliveries } from "./panels/deliveries.js";
import { mountEvents } from "./panels/events.js";
import { mountLogin } from "./panels/login.js";
import { mountSend } from "./panels/send.js";
import { badge, describeError, h, replace, toast } from "./util.js";

/** @typedef {import("./state.js").SessionView} SessionView */
/** @typedef {import("./state.js").GatewayEvent} GatewayEvent */

/**
 * What a panel of the session page is given. Each `on*` returns the function that
 * unsubscribes; a panel calls those in its cleanup.
 * @typedef {object} SessionContext
 * @property {string} id
 * @property {string} enc the id, URL-encoded for paths
 * @property {() => boolean} closed true once the page has left this session
 * @property {Promise<boolean>} ready settles after the first load of the session: false if
 *   it does not exist (or the page was left), true otherwise (even if that load failed)
 * @property {(listener: (session: SessionView) => void) => () => void} onSession
 *   after every (re)load of the session and every status change pushed by the stream
 * @property {(listener: (event: GatewayEvent) => void) => () => void} onEvent
 *   each event of this session from the live stream
 * @property {(listener: (state: string) => void) => () => void} onStream
 *   the stream's state: "live" or "reconnecting"
 */

/**
 * A set of listeners for one kind of news.
 * @template T
 */
class Listeners {
  constructor() {
    /** @type {Set<(value: T) => void>} */
    this.listeners = new Set();
  }

  /** @param {(value: T) => void} listener @returns {() => void} */
  add(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @param {T} value */
  emit(value) {
    for (const listener of [...this.listeners]) listener(value);
  }
}

const REFRESH_MS = 5000;

/**
 * @param {HTMLElement} root
 * @param {string} id
 * @returns {() => void} the view's cleanup (safe to call twice)
 */
export function renderSession(root, id) {
  const enc = encodeURIComponent(id);
  /** @type {SessionView | null} */
  let session = null;
  let closed = false;
  /** @type {Listeners<SessionView>} */
  const sessions = new Listeners();
  /** @type {Listeners<GatewayEvent>} */
  const events = new Listeners();
  /** @type {Listeners<string>} */
  const stream = new Listeners();
  /** @type {(found: boolean) => void} */
  let settleReady = () => {};
  /** @type {Promise<boolean>} */
  const ready = new Promise((resolve) => { settleReady = resolve; });
  /** @type {SessionContext} */
  const ctx = {
    id,
    enc,
    closed: () => closed,
    ready,
    onSession: (listener) => sessions.add(listener),
    onEvent: (listener) => events.add(listener),
    onStream: (listener) => stream.add(listener),
  };

  const statusSlot = h("span", { id: "session-status", "aria-live": "polite" });
  const actionsSlot = h("div", { class: "head-actions" });
  const exportButton = h("button", { type: "button", class: "btn btn-small", id: "export",
    onclick: () => download(`/api/dashboard/sessions/${enc}/export`, `gowa-session-${id}.json`)
      .catch((e) => toast(`Export failed: ${e.message}`, "error")) }, "Export JSON");
  // Why the session stopped or failed, when it says (a passkey request, no QR scanned...).
  const errorSlot = h("div", { class: "session-error", id: "session-error", role: "alert",
    hidden: true });
  const grid = h("div", { class: "session-grid" });
  replace(root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/sessions" }, "Sessions"), " / ", id),
    h("div", { class: "page-head" },
      h("h1", {}, "Session ", h("span", { class: "mono" }, id), " ", statusSlot),
      h("div", { class: "head-buttons" }, actionsSlot, exportButton)),
    errorSlot,
    grid);
  const cleanups = [
    mountLogin(grid, ctx),
    mountAccount(grid, ctx),
    mountConfig(grid, ctx),
    mountSend(grid, ctx),
    mountDeliveries(grid, ctx),
    mountEvents(root, ctx),
  ];

  /** @param {string | null | undefined} error */
  function drawError(error) {
    // Redrawn only when it changes, so a screen reader announces it once.
    if ((errorSlot.dataset.error || "") === (error || "")) return;
    errorSlot.dataset.error = error || "";
    errorSlot.hidden = !error;
    if (!error) {
      replace(errorSlot);
      return;
    }
    const { code, label, message } = describeError(error);
    replace(errorSlot, h("strong", { class: "session-error-label" }, label),
      code ? h("code", { class: "session-error-code" }, code) : null,
      h("p", { class: "session-error-message" }, message));
  }

  /** @param {SessionView} current */
  function drawHead(current) {
    replace(statusSlot, badge(current.status, current.hibernating));
    drawError(current.error);
    const focused = document.activeElement;
    const focusedAction = focused instanceof HTMLElement && actionsSlot.contains(focused)
      ? focused.dataset.action : null;
    replace(actionsSlot, actionButtons(current, loadSession,
      { onDeleted: () => { location.hash = "#/sessions"; } }));
    if (focusedAction) {
      const button = actionsSlot.querySelector(`[data-action="${focusedAction}"]`);
      if (button instanceof HTMLElement) button.focus();
    }
  }

  /** @param {SessionView} current */
  function show(current) {
    session = current;
    drawHead(current);
    sessions.emit(current);
  }

  async function loadSession() {
    /** @type {SessionView} */
    let loaded;
    try {
      loaded = await get(`/api/dashboard/sessions/${enc}`);
    } catch (error) {
      if (closed) return;
      if (error.status === 404) {
        cleanup();
        replace(root, h("h1", {}, "Session not found"),
          h("p", {}, h("a", { href: "#/sessions" }, "Back to the sessions")));
        return;
      }
      toast(`Session: ${error.message}`, "error");
      return;
    }
    if (!closed) show(loaded);
  }

  /** @param {GatewayEvent} event */
  function onEvent(event) {
    if (event.session_id !== id) return;
    events.emit(event);
    if (event.event === "session.status" && session) {
      show({ ...session, status: event.payload?.status,
        hibernating: Boolean(event.payload?.hibernating) });
      loadSession();
    }
  }

  const closeStream = openEvents(id, onEvent, (state) => stream.emit(state));
  const refreshTimer = setInterval(loadSession, REFRESH_MS);

  function cleanup() {
    if (closed) return;
    closed = true;
    settleReady(false);
    closeStream();
    clearInterval(refreshTimer);
    for (const panelCleanup of cleanups) panelCleanup();
  }

  loadSession().then(() => settleReady(!closed));
  return cleanup;
}
