// @ts-check
// Shared state: gateway info and the bus that fans the global event stream out to views.

/**
 * What GET /api/dashboard/info answers; set by main.js before any view renders.
 * @typedef {object} DashboardInfo
 * @property {string} version
 * @property {string | null} sandbox URL of the sandbox network, null against real WhatsApp
 * @property {number} sample_interval
 * @property {number} metrics_retention_hours
 * @property {boolean} auth_required
 * @property {string | null} node this node's id in a cluster, null without one
 */

/**
 * A GoWA event envelope, as the WebSocket and the event history deliver it.
 * @typedef {object} GatewayEvent
 * @property {string} event
 * @property {string} [session_id]
 * @property {string} [id]
 * @property {string} timestamp
 * @property {Record<string, any>} [payload]
 */

/**
 * A session as GET /api/dashboard/sessions/{id} answers it (the fields the page reads).
 * @typedef {object} SessionView
 * @property {string} id
 * @property {string} status
 * @property {boolean} [hibernating] STOPPED by idle_timeout; the next request wakes it
 * @property {string | null} [status_since]
 * @property {string | null} [error]
 * @property {string | null} [phone]
 * @property {{ jid?: string, push_name?: string } | null} [me]
 * @property {WorkerView} worker
 * @property {number | null} [uptime_s]
 * @property {string | null} [last_activity]
 * @property {string | null} [created_at]
 * @property {{ at: string, status: string, error?: string | null }[]} [transitions]
 * @property {string | null} [node] the cluster node running it (null: none, or no cluster)
 * @property {Record<string, unknown>} config
 */

/**
 * @typedef {object} WorkerView
 * @property {number | null} pid
 * @property {{ rss: number, pss: number, uss: number }} memory
 * @property {number} cpu_percent
 * @property {number} restarts
 */

export const bus = new EventTarget();
/** @type {{ info: DashboardInfo | null }} */
export const app = { info: null };

/**
 * @param {(event: GatewayEvent) => void} handler
 * @returns {() => void} removes the handler
 */
export function onGatewayEvent(handler) {
  /** @param {Event} e */
  const listener = (e) => handler(/** @type {CustomEvent<GatewayEvent>} */ (e).detail);
  bus.addEventListener("gateway-event", listener);
  return () => bus.removeEventListener("gateway-event", listener);
}
