"""Tests of the sandbox WhatsApp network."""
