"""gowa-py: a multi-session WhatsApp gateway with one isolated worker process per session."""

__version__ = "0.1.0"
