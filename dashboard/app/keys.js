// @ts-check
// API keys: scoped keys bound to some sessions, read or full. The secret is shown once,
// in this page's memory only; the list never has it.
import { api, get, post } from "./api.js";
import { app } from "./state.js";
import { ago, confirmDialog, field, h, replace, toast } from "./util.js";

const COLUMNS = ["Name", "Key", "Sessions", "Scope", "Created", "Actions"];

export function renderKeys(root) {
  const head = h("div", { class: "page-head" }, h("h1", {}, "API keys"));
  if (!app.info?.auth_required) {
    replace(root, head, h("p", { class: "muted" },
      "Scoped keys need an admin credential first (api_key, api_key_hash or basic_auth): "
      + "without one, every request is already let in."));
    return () => {};
  }

  const name = h("input", { type: "text", name: "name", maxlength: 100, autocomplete: "off" });
  const scope = h("select", { name: "scope" },
    h("option", { value: "full" }, "Full: read and act"),
    h("option", { value: "read" }, "Read only (GET)"));
  const sessionBoxes = h("div", { class: "key-sessions", role: "group",
    "aria-labelledby": "key-sessions-label" });
  const error = h("p", { class: "form-error", role: "alert" });
  const created = h("div", { class: "card key-card new-key", hidden: true, role: "status" });
  const form = h("form", { class: "card key-card", "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title" }, "New key"),
    field("Name (optional)", name, "Who or what uses it, e.g. crm."),
    h("div", { class: "field" },
      h("span", { id: "key-sessions-label", class: "label" }, "Sessions"), sessionBoxes),
    field("Scope", scope),
    error,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Create key")));

  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No scoped keys yet.");
  const table = h("table", { class: "table", id: "keys-table" },
    h("caption", { class: "visually-hidden" }, "Scoped API keys"),
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    body);
  replace(root, head,
    h("p", { class: "muted" }, "A scoped key reaches only the sessions it names; "
      + "the configured credential stays the admin."),
    created, form, h("div", { class: "table-wrap" }, table), empty);

  function showSecret(key) {
    const input = h("input", { type: "text", readonly: true, value: key.key,
      class: "mono", "aria-label": "The new API key" });
    replace(created,
      h("p", {}, h("strong", {}, `Key ${key.name || key.id} created. `),
        "Copy it now: it is not shown again."),
      h("div", { class: "field inline" }, input,
        h("button", { type: "button", class: "btn btn-small", onclick: async () => {
          input.select();
          try {
            await navigator.clipboard.writeText(key.key);
            toast("Copied");
          } catch {
            toast("Select the key and copy it", "error");
          }
        } }, "Copy"),
        h("button", { type: "button", class: "btn btn-small", onclick: () => {
          replace(created);
          created.hidden = true;
        } }, "Done")));
    created.hidden = false;
    input.focus();
    input.select();
  }

  function row(key) {
    const revoke = h("button", { type: "button", class: "btn btn-small btn-danger-ghost",
      "aria-label": `Revoke key ${key.name || key.id}`, onclick: async () => {
        if (!await confirmDialog(`Revoke ${key.name || key.id}?`,
          "Clients using this key get 401 from now on. This cannot be undone.", "Revoke")) {
          return;
        }
        try {
          await api("DELETE", `/api/keys/${encodeURIComponent(key.id)}`);
          toast(`Revoked ${key.name || key.id}`);
        } catch (failure) {
          toast(`Revoke failed: ${failure.message}`, "error");
        }
        refresh();
      } }, "Revoke");
    return h("tr", { "data-key": key.id },
      h("th", { scope: "row", "data-label": "Name" }, key.name || "–"),
      h("td", { "data-label": "Key", class: "mono" }, `${key.prefix}…`),
      h("td", { "data-label": "Sessions" }, key.sessions.join(", ")),
      h("td", { "data-label": "Scope" }, key.scope),
      h("td", { "data-label": "Created" }, ago(key.created_at)),
      h("td", { "data-label": "Actions" }, revoke));
  }

  /** @returns {string[]} the ids of the ticked session boxes */
  function checkedSessions() {
    return [...sessionBoxes.querySelectorAll("input")].filter((box) => box.checked)
      .map((box) => box.value);
  }

  async function refresh() {
    try {
      const [keys, sessions] = await Promise.all([
        get("/api/keys"), get("/api/dashboard/sessions")]);
      replace(body, keys.map(row));
      empty.hidden = keys.length > 0;
      table.hidden = keys.length === 0;
      const checked = new Set(checkedSessions());
      replace(sessionBoxes, sessions.length ? sessions.map((s) => {
        const box = h("input", { type: "checkbox", name: "sessions", value: s.id,
          id: `key-session-${s.id}`, checked: checked.has(s.id) });
        return h("div", { class: "field checkbox" }, box,
          h("label", { for: box.id }, s.id));
      }) : h("p", { class: "muted" }, "No sessions yet."));
    } catch (failure) {
      if (failure.status !== 401) toast(`API keys: ${failure.message}`, "error");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const sessions = checkedSessions();
    if (!sessions.length) {
      error.textContent = "Pick at least one session.";
      return;
    }
    try {
      const key = await post("/api/keys", { name: name.value, sessions, scope: scope.value });
      form.reset();
      showSecret(key);
      refresh();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });

  refresh();
  return () => {};
}
