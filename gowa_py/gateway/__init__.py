"""The aiohttp gateway: REST API, event stream, metrics and dashboard. Never talks to WhatsApp."""
