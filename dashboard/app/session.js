// One session: QR / pairing-code login, account, config, test message, webhook deliveries,
// export, and the live stream of its events and logs.
import { actionButtons } from "./actions.js";
import { api, ApiFailure, download, get, imageUrl, openEvents, post } from "./api.js";
import { app } from "./state.js";
import { ago, badge, bytes, clock, duration, field, h, replace, toast } from "./util.js";

const MAX_EVENTS = 1000;
const SHOWN_EVENTS = 400;
const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const CATEGORIES = [["status", "Status & QR"], ["message", "Messages"], ["log", "Logs"],
  ["other", "Other"]];

function category(name) {
  if (name === "log") return "log";
  if (name.startsWith("session.")) return "status";
  if (name.startsWith("message")) return "message";
  return "other";
}

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

function panel(id, title, ...children) {
  return h("section", { class: "card panel", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), ...children);
}

export function renderSession(root, id) {
  const enc = encodeURIComponent(id);
  let session = null;
  let qrUrl = null;
  let qrExpires = 0;
  let paused = false;
  let backlog = [];
  let events = [];
  let closed = false;

  // ---------------------------------------------------------------- layout
  const statusSlot = h("span", { id: "session-status", "aria-live": "polite" });
  const actionsSlot = h("div", { class: "head-actions" });
  const exportButton = h("button", { type: "button", class: "btn btn-small", id: "export",
    onclick: () => download(`/api/dashboard/sessions/${enc}/export`, `gowa-session-${id}.json`)
      .catch((e) => toast(`Export failed: ${e.message}`, "error")) }, "Export JSON");

  const qrImage = h("img", { id: "qr-image", alt: `QR code to link session ${id}`,
    width: 264, height: 264, hidden: true });
  const qrNote = h("p", { id: "qr-note", class: "muted", "aria-live": "polite" },
    "No QR code yet.");
  const showQr = h("button", { type: "button", class: "btn btn-primary", id: "show-qr",
    onclick: startLogin }, "Show QR code");
  const pairPhone = h("input", { type: "tel", name: "pair_phone", inputmode: "numeric",
    placeholder: "5511999990000", autocomplete: "off" });
  const pairResult = h("p", { class: "pair-code", id: "pair-code", "aria-live": "polite" });
  const pairForm = h("form", { class: "inline-form", onsubmit: pairCode },
    field("Phone number for a pairing code", pairPhone, "International format, digits only."),
    h("button", { type: "submit", class: "btn" }, "Get pairing code"));
  const sandboxPhone = h("input", { type: "tel", name: "sandbox_phone", inputmode: "numeric",
    placeholder: "automatic", autocomplete: "off" });
  const sandboxForm = app.info?.sandbox ? h("form", { class: "inline-form sandbox-form",
    onsubmit: sandboxScan },
  field("Sandbox phone (optional)", sandboxPhone, "Created in the sandbox if it does not exist."),
  h("button", { type: "submit", class: "btn btn-sandbox", id: "sandbox-scan" },
    "Scan with a sandbox phone")) : null;
  const loginPanel = panel("login-panel", "Link a phone",
    h("div", { class: "qr-layout" },
      h("figure", { class: "qr-box" }, qrImage, h("figcaption", {}, qrNote)),
      h("div", { class: "qr-side" },
        h("p", {}, "Open WhatsApp on the phone, Linked devices → Link a device, and scan "
          + "the code. It is replaced automatically when it rotates."),
        showQr, pairForm, pairResult, sandboxForm)));

  const accountList = h("dl", { class: "facts", id: "account" });
  const transitions = h("ol", { class: "transitions", id: "transitions" });

  const configText = h("textarea", { id: "config-json", rows: 10, spellcheck: "false",
    class: "mono" });
  const configError = h("p", { class: "form-error", role: "alert" });
  const configForm = h("form", { onsubmit: saveConfig },
    field("Session config (JSON)", configText,
      "webhooks, proxy, auto_start, idle_timeout — saved with PATCH /api/sessions/{id}."),
    configError,
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn", onclick: () => fillConfig(true) }, "Reset"),
      h("button", { type: "submit", class: "btn btn-primary" }, "Save config")));

  const sendTo = h("input", { type: "text", name: "phone", required: true,
    placeholder: "5511999990000 or JID", autocomplete: "off" });
  const sendText = h("textarea", { name: "message", rows: 2, required: true });
  const sendResult = h("p", { class: "muted", "aria-live": "polite", id: "send-result" });
  const sendForm = h("form", { onsubmit: sendMessage },
    field("To", sendTo), field("Message", sendText), sendResult,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Send test message")));

  const deliveriesBody = h("div", { id: "deliveries" });
  const deliveriesPanel = panel("deliveries-panel", "Webhook deliveries", deliveriesBody);
  deliveriesPanel.hidden = true;

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
    "aria-label": `Events of ${id}`, "aria-live": "off" });
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

  replace(root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/sessions" }, "Sessions"), " / ", id),
    h("div", { class: "page-head" },
      h("h1", {}, "Session ", h("span", { class: "mono" }, id), " ", statusSlot),
      h("div", { class: "head-buttons" }, actionsSlot, exportButton)),
    h("div", { class: "session-grid" },
      loginPanel,
      panel("account-panel", "Account and worker", accountList,
        h("h3", {}, "Recent transitions"), transitions),
      panel("config-panel", "Configuration", configForm),
      panel("send-panel", "Send a test message", sendForm),
      deliveriesPanel),
    eventsPanel);

  // ---------------------------------------------------------------- session state
  function fact(label, value) {
    return [h("dt", {}, label), h("dd", {}, value ?? "–")];
  }

  function drawSession() {
    replace(statusSlot, badge(session.status));
    const focusedAction = actionsSlot.contains(document.activeElement)
      ? document.activeElement.dataset.action : null;
    replace(actionsSlot, actionButtons(session, loadSession,
      { onDeleted: () => { location.hash = "#/sessions"; } }));
    if (focusedAction) actionsSlot.querySelector(`[data-action="${focusedAction}"]`)?.focus();
    const w = session.worker;
    replace(accountList,
      fact("Account", session.me?.jid),
      fact("Push name", session.me?.push_name),
      fact("Phone", session.phone ? `+${session.phone}` : null),
      fact("Status since", session.status_since ? ago(session.status_since) : null),
      session.error ? fact("Error", session.error) : null,
      fact("Worker PID", w.pid),
      fact("Memory", w.memory.rss ? `RSS ${bytes(w.memory.rss)} · PSS ${bytes(w.memory.pss)} · USS ${
        bytes(w.memory.uss)}` : null),
      fact("CPU", w.pid ? `${w.cpu_percent.toFixed(1)}%` : null),
      fact("Uptime", duration(session.uptime_s)),
      fact("Restarts", w.restarts),
      fact("Last activity", ago(session.last_activity)),
      fact("Created", session.created_at ? new Date(session.created_at).toLocaleString() : null));
    replace(transitions, (session.transitions || []).slice(0, 8).map((t) => h("li", {},
      h("time", { datetime: t.at }, clock(t.at)), " ", badge(t.status),
      t.error ? ` ${t.error}` : "")));
    const linked = session.status === "CONNECTED";
    loginPanel.hidden = linked;
    if (linked) clearQr("Linked.");
  }

  function fillConfig(force) {
    if (!session || (!force && document.activeElement === configText)) return;
    if (force || !configText.dataset.dirty) {
      configText.value = JSON.stringify(session.config, null, 2);
      delete configText.dataset.dirty;
      configError.textContent = "";
    }
  }
  configText.addEventListener("input", () => { configText.dataset.dirty = "1"; });

  async function loadSession() {
    try {
      session = await get(`/api/dashboard/sessions/${enc}`);
    } catch (error) {
      if (error.status === 404) {
        replace(root, h("h1", {}, "Session not found"),
          h("p", {}, h("a", { href: "#/sessions" }, "Back to the sessions")));
        closed = true;
        return;
      }
      toast(`Session: ${error.message}`, "error");
      return;
    }
    drawSession();
    fillConfig(false);
    // Covers a QR event missed while the WebSocket was (re)connecting.
    if (session.status === "SCAN_QR_CODE" && !qrUrl) loadQr();
  }

  // ---------------------------------------------------------------- QR and pairing
  function clearQr(note) {
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = null;
    qrImage.hidden = true;
    qrImage.removeAttribute("src");
    qrNote.textContent = note;
  }

  async function loadQr(validFor) {
    const url = await imageUrl(`/api/sessions/${enc}/qr.png`);
    if (closed) return;
    if (!url) {
      if (!qrUrl) qrNote.textContent = "No QR code yet: press “Show QR code”.";
      return;
    }
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = url;
    qrImage.src = url;
    qrImage.hidden = false;
    qrImage.dataset.version = String(Number(qrImage.dataset.version || 0) + 1);
    qrExpires = validFor ? Date.now() + validFor * 1000 : 0;
    tickQr();
  }

  function tickQr() {
    if (!qrUrl) return;
    const left = Math.round((qrExpires - Date.now()) / 1000);
    qrNote.textContent = qrExpires && left > 0
      ? `Scan within ${left} s; a new code follows automatically.`
      : "Waiting for the next code…";
  }

  async function startLogin() {
    showQr.disabled = true;
    qrNote.textContent = "Starting the session and waiting for a QR code…";
    try {
      const result = await get(`/api/${enc}/app/login`);
      await loadQr(result.qr_duration);
    } catch (error) {
      qrNote.textContent = error.message;
    } finally {
      showQr.disabled = false;
    }
  }

  async function pairCode(event) {
    event.preventDefault();
    pairResult.textContent = "Requesting a pairing code…";
    try {
      const phone = encodeURIComponent(pairPhone.value.trim());
      const result = await get(`/api/${enc}/app/login-with-code?phone=${phone}`);
      replace(pairResult, "Enter this code on the phone: ",
        h("strong", { class: "mono" }, result.pair_code));
    } catch (error) {
      pairResult.textContent = error.message;
    }
  }

  async function sandboxScan(event) {
    event.preventDefault();
    const button = sandboxForm.querySelector("button");
    button.disabled = true;
    try {
      const phone = sandboxPhone.value.trim();
      const result = await post(`/api/dashboard/sessions/${enc}/sandbox-scan`,
        phone ? { phone } : {});
      toast(`Scanned by sandbox phone +${result.phone}`);
    } catch (error) {
      toast(`Sandbox scan failed: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- config, send, deliveries
  async function saveConfig(event) {
    event.preventDefault();
    let config;
    try {
      config = JSON.parse(configText.value);
    } catch (error) {
      configError.textContent = `Not valid JSON: ${error.message}`;
      return;
    }
    try {
      session = { ...session, ...(await api("PATCH", `/api/sessions/${enc}`, { config })) };
      delete configText.dataset.dirty;
      fillConfig(true);
      toast("Config saved");
    } catch (error) {
      configError.textContent = error.message;
    }
  }

  async function sendMessage(event) {
    event.preventDefault();
    sendResult.textContent = "Sending…";
    try {
      const result = await post(`/api/${enc}/send/message`,
        { phone: sendTo.value.trim(), message: sendText.value });
      sendResult.textContent = `${result.status} (id ${result.message_id})`;
    } catch (error) {
      sendResult.textContent = `Not sent: ${error.message}`;
    }
  }

  function when(value) {
    if (value === null || value === undefined) return "–";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
  }

  async function redeliver(delivery) {
    try {
      await post(`/api/${enc}/webhooks/deliveries/${encodeURIComponent(delivery.id)}/redeliver`);
      toast(`Delivery ${delivery.id} queued again`);
    } catch (error) {
      toast(`Redeliver failed: ${error.message}`, "error");
    }
    loadDeliveries();
  }

  // Hidden until the first answer; a 404 (the session was just deleted) hides it quietly.
  async function loadDeliveries() {
    let result;
    try {
      result = await get(`/api/${enc}/webhooks/deliveries?limit=50`);
    } catch (error) {
      deliveriesPanel.hidden = true;
      if (!(error instanceof ApiFailure) || error.status !== 404) {
        toast(`Webhook deliveries: ${error.message}`, "error");
      }
      return;
    }
    const rows = Array.isArray(result) ? result : result?.deliveries || [];
    const counts = result?.counts || {};
    deliveriesPanel.hidden = false;
    const summaryLine = h("p", { class: "muted" },
      Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(" · ") || "",
      " ", h("button", { type: "button", class: "btn btn-small", onclick: loadDeliveries },
        "Refresh"));
    if (!rows.length) {
      replace(deliveriesBody, summaryLine, h("p", { class: "muted" }, "No deliveries yet."));
      return;
    }
    const cell = (label, value) => h("td", { "data-label": label }, value ?? "–");
    replace(deliveriesBody, summaryLine, h("div", { class: "table-wrap" },
      h("table", { class: "table", id: "deliveries-table" },
        h("thead", {}, h("tr", {}, ["Event", "Status", "Attempts", "Last result", "Created", ""]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((d) => h("tr", {},
          cell("Event", d.event), cell("Status", d.status), cell("Attempts", d.attempts),
          cell("Last result", d.last_error || d.last_status),
          cell("Created", when(d.created_at)),
          h("td", {}, d.status === "delivered" ? null : h("button", { type: "button",
            class: "btn btn-small", "aria-label": `Redeliver ${d.event} delivery ${d.id}`,
            onclick: () => redeliver(d) }, "Redeliver"))))))));
  }

  // ---------------------------------------------------------------- live events
  function visible(event) {
    const cat = category(event.event);
    if (!root.querySelector(`#filter-${cat}`)?.checked) return false;
    if (cat === "log") {
      const level = LEVELS.indexOf(event.payload?.level);
      if (level >= 0 && level < LEVELS.indexOf(levelSelect.value)) return false;
    }
    const text = search.value.trim().toLowerCase();
    return !text || `${event.event} ${summary(event)}`.toLowerCase().includes(text);
  }

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

  function redrawEvents() {
    const shown = events.filter(visible).slice(-SHOWN_EVENTS).reverse();
    replace(eventList, shown.length ? shown.map(eventRow)
      : h("li", { class: "muted empty" }, "No events to show."));
    eventState.textContent = paused ? `paused — ${backlog.length} new` : "";
  }

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

  function onEvent(event) {
    if (event.session_id !== id) return;
    if (paused) backlog.push(event);
    else addEvent(event);
    if (event.event === "session.status" && session) {
      session.status = event.payload.status;
      drawSession();
      loadSession();
    } else if (event.event === "session.qr") {
      loadQr(event.payload?.qr_duration);
    }
    if (!paused) redrawEvents();
    else eventState.textContent = `paused — ${backlog.length} new`;
  }

  const closeStream = openEvents(id, onEvent, (state) => {
    eventState.textContent = state === "live" ? "" : state;
  });
  const qrTimer = setInterval(tickQr, 1000);
  const refreshTimer = setInterval(loadSession, 5000);
  const deliveriesTimer = setInterval(() => {
    if (!deliveriesPanel.hidden) loadDeliveries();
  }, 15000);

  (async () => {
    await loadSession();
    if (closed) return;
    try {
      (await get(`/api/dashboard/sessions/${enc}/events?limit=200`)).forEach(addEvent);
    } catch (error) {
      toast(`Events: ${error.message}`, "error");
    }
    redrawEvents();
    loadDeliveries();
  })();

  return () => {
    closed = true;
    closeStream();
    clearInterval(qrTimer);
    clearInterval(refreshTimer);
    clearInterval(deliveriesTimer);
    if (qrUrl) URL.revokeObjectURL(qrUrl);
  };
}
