"""Webhooks: a durable per-session outbox and an at-least-once deliverer (README, "Webhooks")."""
