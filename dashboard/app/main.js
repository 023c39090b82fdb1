// Entry point: login check, the global event stream and the hash router.
import { get, onUnauthorized, openEvents, post, setCsrf } from "./api.js";
import { renderKeys } from "./keys.js";
import { renderLogin } from "./login.js";
import { renderOverview } from "./overview.js";
import { renderSession } from "./session.js";
import { renderSessions } from "./sessions.js";
import { app, bus } from "./state.js";
import { toast } from "./util.js";

const main = document.getElementById("main");
const liveState = document.getElementById("live-state");
const logoutButton = document.getElementById("logout");
let cleanupView = null;
let closeEvents = null;
let authRequired = false;

function setLive(state) {
  liveState.textContent = state === "live" ? "● live" : state;
  liveState.dataset.state = state;
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const session = /^\/sessions\/([^/]+)$/.exec(hash);
  if (session) return { name: "session", id: decodeURIComponent(session[1]) };
  if (hash === "/sessions") return { name: "sessions" };
  if (hash === "/keys") return { name: "keys" };
  return { name: "overview" };
}

function render() {
  cleanupView?.();
  cleanupView = null;
  const current = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = link.dataset.nav === current.name
      || (current.name === "session" && link.dataset.nav === "sessions");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  if (current.name === "session") cleanupView = renderSession(main, current.id);
  else if (current.name === "sessions") cleanupView = renderSessions(main);
  else if (current.name === "keys") cleanupView = renderKeys(main);
  else cleanupView = renderOverview(main);
}

async function start() {
  try {
    app.info = await get("/api/dashboard/info");
  } catch (error) {
    main.replaceChildren(`Cannot load the dashboard: ${error.message}`);
    return;
  }
  const banner = document.getElementById("sandbox-banner");
  if (app.info.sandbox) {
    document.getElementById("sandbox-url").textContent = app.info.sandbox;
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

function showLogin(methods) {
  if (main.querySelector(".login-card")) return;
  cleanupView?.();
  cleanupView = null;
  closeEvents?.();
  closeEvents = null;
  setLive("signed out");
  logoutButton.hidden = true;
  document.getElementById("main-nav").hidden = true;
  renderLogin(main, methods, (csrf) => {
    setCsrf(csrf);
    document.getElementById("main-nav").hidden = false;
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
