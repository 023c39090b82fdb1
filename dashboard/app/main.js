// @ts-check
// Entry point: login check, the global event stream and the hash router.
import { get, onUnauthorized, openEvents, post, setCsrf } from "./api.js";
import { renderCluster } from "./cluster.js";
import { renderKeys } from "./keys.js";
import { renderLogin } from "./login.js";
import { renderOverview } from "./overview.js";
import { renderSession } from "./session.js";
import { renderSessions } from "./sessions.js";
import { app, bus } from "./state.js";
import { byId, toast } from "./util.js";

const main = byId("main");
const liveState = byId("live-state");
const logoutButton = byId("logout");
/** @type {(() => void) | null} */
let cleanupView = null;
/** @type {(() => void) | null} */
let closeEvents = null;
let authRequired = false;

/** @param {string} state */
function setLive(state) {
  liveState.textContent = state === "live" ? "● live" : state;
  liveState.dataset.state = state;
}

/**
 * @typedef {{ name: "session", id: string }
 *   | { name: "sessions" | "keys" | "cluster" | "overview" }} Route
 */

/** @returns {Route} the view the location's hash names */
function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const session = /^\/sessions\/([^/]+)$/.exec(hash);
  if (session) return { name: "session", id: decodeURIComponent(session[1]) };
  if (hash === "/sessions") return { name: "sessions" };
  if (hash === "/keys") return { name: "keys" };
  if (hash === "/cluster" && app.info?.node) return { name: "cluster" };
  return { name: "overview" };
}

function render() {
  cleanupView?.();
  cleanupView = null;
  const current = route();
  /** @type {NodeListOf<HTMLAnchorElement>} */
  const links = document.querySelectorAll("a[data-nav]");
  for (const link of links) {
    const active = link.dataset.nav === current.name
      || (current.name === "session" && link.dataset.nav === "sessions");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  if (current.name === "session") cleanupView = renderSession(main, current.id);
  else if (current.name === "sessions") cleanupView = renderSessions(main);
  else if (current.name === "keys") cleanupView = renderKeys(main);
  else if (current.name === "cluster") cleanupView = renderCluster(main);
  else cleanupView = renderOverview(main);
}

async function start() {
  /** @type {import("./state.js").DashboardInfo} */
  let info;
  try {
    info = await get("/api/dashboard/info");
  } catch (error) {
    main.replaceChildren(`Cannot load the dashboard: ${error.message}`);
    return;
  }
  app.info = info;
  byId("nav-cluster").hidden = !info.node;
  const banner = byId("sandbox-banner");
  if (info.sandbox) {
    byId("sandbox-url").textContent = info.sandbox;
    banner.hidden = false;
    document.body.classList.add("sandbox");
  }
  logoutButton.hidden = !authRequired;
  closeEvents = openEvents(null, (event) => {
    bus.dispatchEvent(new CustomEvent("gateway-event", { detail: event }));
  }, setLive);
  window.addEventListener("hashchange", () => {
    render();
    main.focus({ preventScroll: true });
  });
  render();
}

/** @param {string[]} methods */
function showLogin(methods) {
  if (main.querySelector(".login-card")) return;
  cleanupView?.();
  cleanupView = null;
  closeEvents?.();
  closeEvents = null;
  setLive("signed out");
  logoutButton.hidden = true;
  byId("main-nav").hidden = true;
  renderLogin(main, methods, (csrf) => {
    setCsrf(csrf);
    byId("main-nav").hidden = false;
    start();
  });
}

async function boot() {
  let auth;
  try {
    auth = await get("/api/dashboard/auth");
  } catch (error) {
    main.replaceChildren(`The gateway is unreachable: ${error.message}`);
    return;
  }
  authRequired = auth.auth_required;
  onUnauthorized(() => {
    if (authRequired) {
      toast("Your session has ended; please log in again.", "error");
      showLogin(auth.methods);
    }
  });
  logoutButton.addEventListener("click", async () => {
    try {
      await post("/api/dashboard/logout");
    } finally {
      setCsrf(null);
      showLogin(auth.methods);
    }
  });
  if (!auth.authenticated) {
    showLogin(auth.methods);
    return;
  }
  setCsrf(auth.csrf_token);
  start();
}

boot();
