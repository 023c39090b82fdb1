// @ts-check
// The gateway's JSON API. Credentials travel only in the HttpOnly cookie set at login;
// the CSRF token lives in this module's memory and goes back in X-CSRF-Token.

/** @type {string | null} */
let csrfToken = null;
/** @type {Set<(failure: ApiFailure) => void>} */
const unauthorizedHandlers = new Set();

/** A refused or failed request: the gateway's error envelope (status 0: unreachable). */
export class ApiFailure extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {any} [results] */
  constructor(status, code, message, results) {
    super(message);
    this.status = status;
    this.code = code;
    this.results = results;
  }
}

/** @param {string | null} token */
export function setCsrf(token) {
  csrfToken = token || null;
}

/** @param {(failure: ApiFailure) => void} handler */
export function onUnauthorized(handler) {
  unauthorizedHandlers.add(handler);
}

/**
 * One JSON request; resolves to the envelope's ``results``.
 * @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json", "X-Gowa-Dashboard": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrfToken && method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiFailure(0, "NETWORK_ERROR", `the gateway is unreachable (${error.message})`);
  }
  /** @type {any} */
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const failure = new ApiFailure(response.status, data?.code || `HTTP_${response.status}`,
      data?.message || response.statusText, data?.results);
    if (response.status === 401 && !path.startsWith("/api/dashboard/login")) {
      for (const handler of unauthorizedHandlers) handler(failure);
    }
    throw failure;
  }
  return data ? data.results : null;
}

/** @param {string} path */
export const get = (path) => api("GET", path);
/** @param {string} path @param {unknown} [body] */
export const post = (path, body) => api("POST", path, body);

/**
 * A same-origin image (e.g. the QR PNG) fetched with the cookie, as an object URL.
 * @param {string} path @returns {Promise<string | null>} null when the gateway has none
 */
export async function imageUrl(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store",
    headers: { "X-Gowa-Dashboard": "1" } });
  if (!response.ok) return null;
  return URL.createObjectURL(await response.blob());
}

/**
 * A JSON download (e.g. the session export) through the authenticated fetch.
 * @param {string} path @param {string} fallbackName
 */
export async function download(path, fallbackName) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store",
    headers: { "X-Gowa-Dashboard": "1" } });
  if (!response.ok) throw new ApiFailure(response.status, "DOWNLOAD_FAILED", response.statusText);
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

/**
 * The live event stream (GoWA envelopes). Reconnects with backoff; the cookie authenticates.
 * @param {string | null} sessionId null: every session's events
 * @param {(event: import("./state.js").GatewayEvent) => void} onEvent
 * @param {(state: string) => void} [onState] "live" or "reconnecting"
 * @returns {() => void} closes the socket and stops reconnecting
 */
export function openEvents(sessionId, onEvent, onState) {
  /** @type {WebSocket | null} */
  let socket = null;
  let closed = false;
  let delay = 500;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = sessionId ? `?session_id=${encodeURIComponent(sessionId)}` : "";
    const ws = new WebSocket(`${scheme}://${location.host}/api/dashboard/events${query}`);
    socket = ws;
    ws.addEventListener("open", () => {
      delay = 500;
      onState?.("live");
    });
    ws.addEventListener("message", (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        console.error("bad event", error);
      }
    });
    ws.addEventListener("close", () => {
      if (closed) return;
      onState?.("reconnecting");
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    });
  };
  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    socket?.close();
  };
}
