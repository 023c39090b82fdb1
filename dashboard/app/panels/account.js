// @ts-check
// The linked account, the worker's resources and the session's recent status transitions.
import { ago, badge, bytes, clock, duration, h, panel, replace } from "../util.js";

/**
 * @param {string} label
 * @param {string | number | null | undefined} value
 */
function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value ?? "–")];
}

/**
 * @param {HTMLElement} parent
 * @param {import("../session.js").SessionContext} ctx
 * @returns {() => void} cleanup
 */
export function mountAccount(parent, ctx) {
  const accountList = h("dl", { class: "facts", id: "account" });
  const transitions = h("ol", { class: "transitions", id: "transitions" });
  parent.append(panel("account-panel", "Account and worker", accountList,
    h("h3", {}, "Recent transitions"), transitions));

  return ctx.onSession((session) => {
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
  });
}
