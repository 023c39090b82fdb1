// @ts-check
// The Cluster page: every node sharing this gateway's PostgreSQL, polled, with a drain
// button (for upgrades: drain, wait for 0 sessions, restart). Shown only in a cluster.
import { get, post } from "./api.js";
import { ago, badge, bytes, confirmDialog, h, replace, toast } from "./util.js";

const REFRESH_MS = 5000;
const COLUMNS = ["Node", "URL", "Status", "Last heartbeat", "Sessions", "Memory (PSS)",
  "Headroom", "Actions"];

/**
 * A node as GET /api/cluster/nodes answers it.
 * @typedef {object} NodeView
 * @property {string} id
 * @property {string} url
 * @property {string} status up, draining, down (left cleanly) or lost (silent a lease term)
 * @property {string | null} last_heartbeat
 * @property {number} sessions
 * @property {number} capacity max_sessions, 0: no limit
 * @property {number} memory PSS of its workers, bytes
 * @property {number} memory_budget what its workers may use in all, bytes; 0: no limit
 * @property {number} worker_memory mean PSS of one of its workers, bytes; 0: none measured
 * @property {number | null} memory_capacity sessions its budget holds; null: no budget
 * @property {number | null} headroom sessions it can take yet; null: no limit
 * @property {"memory" | "max_sessions" | null} limit what limits it; null: nothing
 * @property {boolean} self the node answering
 */

/** @param {HTMLElement} root @returns {() => void} */
export function renderCluster(root) {
  const body = h("tbody");
  const table = h("table", { class: "table", id: "nodes-table" },
    h("caption", { class: "visually-hidden" }, "Cluster nodes"),
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    body);
  replace(root,
    h("div", { class: "page-head" }, h("h1", {}, "Cluster")),
    h("p", { class: "muted" }, "The gateway nodes sharing this PostgreSQL. Draining a node "
      + "hands its sessions to the others; restart it once it holds none."),
    h("div", { class: "table-wrap" }, table));
  let failed = false;

  /** @param {NodeView} node */
  async function drain(node) {
    const ok = await confirmDialog(`Drain node ${node.id}?`,
      `Its ${node.sessions} session(s) move to the other nodes, and it takes no new ones `
      + "until it is restarted.", "Drain");
    if (!ok) return;
    try {
      await post(`/api/cluster/nodes/${encodeURIComponent(node.id)}/drain`);
      toast(`Node ${node.id} is draining`);
    } catch (error) {
      toast(`Drain: ${error.message}`, "error");
    }
    refresh();
  }

  /**
   * The node's headroom and what limits it: its memory budget or its max_sessions.
   * @param {NodeView} node
   */
  function headroom(node) {
    if (node.headroom === null || node.limit === null) return h("span", {}, "no limit");
    const limit = node.limit;
    const perWorker = node.worker_memory
      ? `${bytes(node.worker_memory)} per worker, measured`
      : "per worker: estimated until one is measured";
    const title = node.memory_capacity === null ? "limited by max_sessions"
      : `budget ${bytes(node.memory_budget)} holds ${node.memory_capacity} sessions `
        + `(${perWorker})`;
    return h("span", { title, "data-limit": limit }, String(node.headroom),
      h("span", { class: "muted" }, ` (${limit})`));
  }

  /** @param {NodeView} node */
  function row(node) {
    const sessions = node.capacity ? `${node.sessions} / ${node.capacity}` : node.sessions;
    return h("tr", { "data-node": node.id },
      h("th", { scope: "row", "data-label": "Node" }, node.id,
        node.self ? h("span", { class: "muted" }, " (this node)") : null),
      h("td", { "data-label": "URL" }, h("span", { class: "mono" }, node.url || "–")),
      h("td", { "data-label": "Status" }, badge(node.status)),
      h("td", { "data-label": "Last heartbeat" }, ago(node.last_heartbeat)),
      h("td", { "data-label": "Sessions" }, sessions),
      h("td", { "data-label": "Memory (PSS)" }, node.memory_budget
        ? `${bytes(node.memory)} / ${bytes(node.memory_budget)}` : bytes(node.memory)),
      h("td", { "data-label": "Headroom" }, headroom(node)),
      h("td", { "data-label": "Actions" }, node.status === "up"
        ? h("button", { type: "button", class: "btn btn-small", "data-action": "drain",
          onclick: () => drain(node) }, "Drain")
        : null));
  }

  async function refresh() {
    try {
      /** @type {NodeView[]} */
      const nodes = await get("/api/cluster/nodes");
      replace(body, nodes.map(row));
      failed = false;
    } catch (error) {
      if (!failed && error.status !== 401) toast(`Cluster: ${error.message}`, "error");
      failed = true;
    }
  }

  const timer = setInterval(refresh, REFRESH_MS);
  refresh();
  return () => clearInterval(timer);
}
