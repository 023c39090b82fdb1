// Shared state: gateway info and the bus that fans the global event stream out to views.

export const bus = new EventTarget();
export const app = { info: null };

export function onGatewayEvent(handler) {
  const listener = (e) => handler(e.detail);
  bus.addEventListener("gateway-event", listener);
  return () => bus.removeEventListener("gateway-event", listener);
}
