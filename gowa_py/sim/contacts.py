"""Simulated contacts: a real neonize companion per contact phone, run by the sandbox.

``POST /sim/phones/{p}/send`` must produce a message the receiving session can decrypt,
which needs a full Signal implementation on the sending side. Rather than re-implement
libsignal, the sandbox starts :mod:`.agent` (a neonize client) as a subprocess for the
contact phone, links it to that phone itself (scanning the agent's QR internally) and
asks it to send. Agents live under ``<data dir>/contacts/<phone>.db`` and keep running,
so later sends are immediate and a restarted sandbox logs them in again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from .errors import SimError
from .network import Network
from .pairing import Pairing
from .store import Phone

log = logging.getLogger(__name__)

AGENT_TIMEOUT = 30.0
#: Root of the source tree holding ``gowa_py`` (the agent's package).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


class Sandbox(Protocol):
    """What the contacts need of the sandbox they belong to (the ``SimServer``)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def network(self) -> Network: ...

    @property
    def pairing(self) -> Pairing: ...

    @property
    def url(self) -> str: ...

    @property
    def ca_pem_path(self) -> Path: ...

    @property
    def root_key(self) -> bytes: ...


class AgentError(SimError):
    def __init__(self, message: str) -> None:
        super().__init__("CONTACT_UNAVAILABLE", message, 503)


class _Agent:
    """One agent subprocess and the events it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, phone: str) -> None:
        self.proc = proc
        self.phone = phone
        self.events: list[dict[str, Any]] = []
        self._cursor = 0
        self._changed = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            if raw.startswith(b"{"):
                try:
                    event = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self._reader.done()

    async def next(self, *names: str, timeout: float = AGENT_TIMEOUT) -> dict[str, Any]:
        """The next not yet consumed event named one of ``names``."""

        async def find() -> dict[str, Any]:
            async with self._changed:
                while True:
                    while self._cursor < len(self.events):
                        event = self.events[self._cursor]
                        self._cursor += 1
                        if event.get("event") in names:
                            return event
                    if self._reader.done():
                        raise AgentError(f"contact agent for {self.phone} exited")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError as exc:
            raise AgentError(f"contact agent for {self.phone}: no {names} in {timeout}s") from exc

    async def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


class Contacts:
    """The agents of all simulated contacts of one sandbox."""

    def __init__(self, sim: Sandbox) -> None:
        self.sim = sim
        self._agents: dict[str, _Agent] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: Chats each phone sends a companion right after it links (``PUT …/history``).
        self.histories: dict[str, list[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task] = set()

    def linked(self, phone: Phone) -> None:
        """A companion of ``phone`` just linked: the phone sends it its history, as a
        real phone does, if it has one (the companion gets it at its next login)."""
        chats = self.histories.get(phone.phone)
        if not chats:
            return
        task = asyncio.create_task(self._history_after_linking(phone, chats))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _history_after_linking(self, phone: Phone, chats: list[dict[str, Any]]) -> None:
        try:
            await self.send_history(phone, chats)
        except SimError as exc:
            log.warning("history sync of %s after linking failed: %s", phone.phone, exc)

    async def send_text(self, phone: Phone, to: str, text: str) -> dict[str, Any]:
        """Have ``phone`` send ``text`` to ``to``; returns the message id."""
        async with self._locks.setdefault(phone.phone, asyncio.Lock()):
            agent = await self._ready_agent(phone)
            await agent.command(cmd="send", to=to, text=text)
            reply = await agent.next("sent", "error")
        if reply["event"] == "error":
            raise SimError("SEND_FAILED", reply.get("error", "send failed"), 502)
        return {"id": reply["id"], "from": phone.phone, "to": to}

    async def send_document(
        self,
        phone: Phone,
        to: str,
        data: bytes,
        filename: str,
        mimetype: str,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """Have ``phone`` send ``data`` as a document (its whatsmeow uploads it to the CDN).

        ``message_id`` is the id ``to`` sees instead of the one the sender's whatsmeow chose:
        a hostile client picks its ids, so tests can send ones no real client would.
        """
        async with self._locks.setdefault(phone.phone, asyncio.Lock()):
            agent = await self._ready_agent(phone)
            if message_id is not None:
                self.sim.network.chosen_ids[(phone.phone, to)] = message_id
            await agent.command(
                cmd="send_document",
                to=to,
                data=base64.b64encode(data).decode(),
                mimetype=mimetype,
                filename=filename,
            )
            reply = await agent.next("sent", "error")
            self.sim.network.chosen_ids.pop((phone.phone, to), None)
        if reply["event"] == "error":
            raise SimError("SEND_FAILED", reply.get("error", "send failed"), 502)
        return {"id": message_id or reply["id"], "from": phone.phone, "to": to}

    async def send_history(self, phone: Phone, chats: list[dict[str, Any]]) -> dict[str, Any]:
        """Have ``phone`` send its companions a history sync of ``chats`` (see
        :mod:`.history`)."""
        async with self._locks.setdefault(phone.phone, asyncio.Lock()):
            agent = await self._ready_agent(phone)
            await agent.command(cmd="history", chats=chats)
            reply = await agent.next("history_sent", "error")
        if reply["event"] == "error":
            raise SimError("SEND_FAILED", reply.get("error", "history sync failed"), 502)
        return {"id": reply["id"], "phone": phone.phone, "chats": reply["chats"]}

    async def _ready_agent(self, phone: Phone) -> _Agent:
        agent = self._agents.get(phone.phone)
        if agent is not None and agent.alive:
            return agent
        db = self.sim.data_dir / "contacts" / f"{phone.phone}.db"
        db.parent.mkdir(exist_ok=True)
        agent = await self._spawn(phone, db)
        first = await agent.next("qr", "connected", "logged_out", "connect_error")
        if first["event"] in ("logged_out", "connect_error"):
            await agent.stop()
            db.unlink(missing_ok=True)
            agent = await self._spawn(phone, db)
            first = await agent.next("qr", "connected", "connect_error")
        if first["event"] == "qr":
            self.sim.pairing.scan(phone, first["qr"])
            first = await agent.next("connected", "connect_error")
        if first["event"] != "connected":
            await agent.stop()
            raise AgentError(f"contact agent for {phone.phone} failed: {first}")
        self._agents[phone.phone] = agent
        return agent

    async def _spawn(self, phone: Phone, db: Path) -> _Agent:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p
        )
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(var, None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gowa_py.sim.agent",
            "--db",
            str(db),
            "--proxy",
            self.sim.url,
            "--ca",
            str(self.sim.ca_pem_path),
            "--root-key",
            self.sim.root_key.hex(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=self.sim.data_dir,
        )
        log.info("started contact agent for %s (pid %d)", phone.phone, proc.pid)
        return _Agent(proc, phone.phone)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(agent.stop() for agent in self._agents.values()))
        self._agents.clear()
