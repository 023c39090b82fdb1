"""ZeroMQ plumbing between the gateway and its workers.

Topology (the gateway binds, workers connect, so a restarted worker simply reconnects):

* commands: gateway ROUTER <-> worker DEALER. The ROUTER is ``ROUTER_MANDATORY`` (a
  request to a worker that is not connected fails at once instead of vanishing). A
  worker can serve several requests at once; replies are matched by id.
* events: gateway SUB <- worker XPUB, topic = session id. A worker buffers its events
  until the XPUB has seen the gateway's subscription, which is what defeats ZeroMQ's
  slow-joiner loss at start-up.

A worker can only speak as itself. Every worker may be compromised (it parses whatever
WhatsApp peers send), and all of them reach the same two sockets, so which session a
message speaks for is decided by credentials, never by what the message or the socket
claims:

* Both gateway sockets are CURVE servers. For each worker process the gateway mints a
  key pair (:meth:`GatewaySockets.admit`) and keeps only the public half; the secret goes
  to that one process through a pipe (``gowa_py.supervisor.process``). The gateway's ZAP
  handler accepts a handshake only with a key it issued and not yet replaced, and gives
  the connection the key's session id as its ``User-Id``; ``ZAP_ENFORCE_DOMAIN`` makes
  libzmq refuse every connection when no handler answers. A handshake also proves the
  worker talks to this gateway: the server key is the only one its sockets trust.
* Every event, hello and reply is checked against that ``User-Id``: an event or hello
  naming another session is dropped (and logged, at most once per 10 s per kind).
* The gateway, not the worker, decides where a session's commands go: each worker gets
  a random routing id with its key, and a session's commands are routed to it only once
  a hello from that routing id, authenticated as that session, has arrived. A reply
  counts only if it comes from the routing id its request went to. ``ROUTER_HANDOVER``
  is off, so a connection can never take over a routing id in use; the ids are random, so
  no worker can claim another's first; and a key allows only a few handshakes, so a
  worker cannot open connections by the thousand to collide with the ids libzmq assigns
  to peers without one.

What the checks cost per message is in docs/benchmarks.md ("The wire's authentication").

One module each: :mod:`.gateway_sockets` (the gateway's end), :mod:`.worker_link` (a
worker's), :mod:`.curve` (who may speak), :mod:`.receiver` (reading a socket on the event
loop), :mod:`.paths` (where the endpoints are) and :mod:`.errors`.
"""

from gowa_py.ipc.curve import MAX_HANDSHAKES
from gowa_py.ipc.errors import WorkerError, WorkerUnavailable
from gowa_py.ipc.gateway_sockets import GatewaySockets
from gowa_py.ipc.paths import endpoints, runtime_dir
from gowa_py.ipc.worker_link import WorkerLink

__all__ = [
    "MAX_HANDSHAKES",
    "GatewaySockets",
    "WorkerError",
    "WorkerLink",
    "WorkerUnavailable",
    "endpoints",
    "runtime_dir",
]
