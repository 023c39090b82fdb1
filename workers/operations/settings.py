"""The session's own settings, changed while it runs (no GoWA route: the gateway sends it)."""

from __future__ import annotations

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers.operations.context import Context, handles, ok


@handles(ops.ApplySettings, connected=False)
def apply_settings(ctx: Context, op: ops.ApplySettings) -> p.OperationResult:
    ctx.settings = op
    ctx.store.retention_days = op.chat_retention_days
    removed = ctx.store.prune()
    return ok({"pruned_messages": removed}, "Settings applied")
