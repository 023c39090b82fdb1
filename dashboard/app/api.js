// The gateway's JSON API. Credentials travel only in the HttpOnly cookie set at login;
// the CSRF token lives in this module's memory and goes back in X-CSRF-Token.

let csrfToken = null;
const unauthorizedHandlers = new Set();

export class ApiFailure extends Error {
  constructor(status, code, message, results) {
    super(message);
    this.status = status;
    this.code = code;
    this.results = results;
  }
}

export function setCsrf(token) {
  csrfToken = token || null;
}

export function onUnauthorized(handler) {
  unauthorizedHandlers.add(handler);
}

export async function api(method, path, body) {
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

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);

// A same-origin image (e.g. the QR PNG) fetched with the cookie, as an object URL.
export async function imageUrl(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store",
    headers: { "X-Gowa-Dashboard": "1" } });
  if (!response.ok) return null;
  return URL.createObjectURL(await response.blob());
}

// A JSON download (e.g. the session export) through the authenticated fetch.
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

// The live event stream (GoWA envelopes). Reconnects with backoff; the cookie authenticates.
export function openEvents(sessionId, onEvent, onState) {
  let socket = null;
  let closed = false;
  let delay = 500;
  let timer = null;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = sessionId ? `?session_id=${encodeURIComponent(sessionId)}` : "";
    socket = new WebSocket(`${scheme}://${location.host}/api/dashboard/events${query}`);
    socket.addEventListener("open", () => {
      delay = 500;
      onState?.("live");
    });
    socket.addEventListener("message", (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        console.error("bad event", error);
      }
    });
    socket.addEventListener("close", () => {
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
