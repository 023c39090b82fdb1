"""The sandbox WhatsApp network (placeholder docstring, expanded below)."""
