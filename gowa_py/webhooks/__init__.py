"""Webhooks: a durable per-session outbox and an at-least-once deliverer (DESIGN.md §6)."""
