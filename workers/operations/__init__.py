"""Worker side of the GoWA operations: one small handler per ``gowa_py.operations`` struct.

The package mirrors the gateway's GoWA tags: the handler of an operation is in the module
named after its tag (``user``, ``send``, ``message``, ``chat``, ``group``, ``newsletter``;
``settings`` for the session's own settings), registered with
:func:`workers.operations.context.handles`. ``context`` dispatches an operation to its
handler; ``messages`` and ``media`` build, send and store messages for several tags;
``events`` keeps the chat store current from neonize events and ``automations`` runs the
per-session automations (auto-reply, auto-read, auto-download, call reject). Importing the
package registers every handler.
"""

from workers.operations import chat, group, message, newsletter, send, settings, user

__all__ = ["chat", "group", "message", "newsletter", "send", "settings", "user"]
