"""A small synchronous client of the gateway's REST API, used by the ``gowa session`` CLI."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO, Any

from gowa_py.protocol import ErrorCode


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class GatewayClient:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        # The gateway is usually local: never send its API key through an HTTP proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(
        self, method: str, path: str, data: Any, content_type: str | None
    ) -> urllib.request.Request:
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if content_type is not None:
            request.add_header("Content-Type", content_type)
        if self.api_key:
            request.add_header("X-Api-Key", self.api_key)
        return request

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        kind = "application/json" if data is not None else None
        return self._send(self._request(method, path, data, kind))

    def upload(self, path: str, source: IO[bytes], size: int, content_type: str) -> Any:
        """POST a file as the body (streamed) and return the envelope's results."""
        request = self._request("POST", path, source, content_type)
        request.add_header("Content-Length", str(size))
        return self._send(request)

    def download(self, path: str, target: IO[bytes]) -> None:
        """POST without a body and write the answer's body (a file) into ``target``."""
        request = self._request("POST", path, None, None)
        self._send(request, lambda response: shutil.copyfileobj(response, target, 1 << 20))

    def _send(
        self, request: urllib.request.Request, read: Callable[[Any], Any] | None = None
    ) -> Any:
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                if read is not None:
                    return read(response)
                payload = json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read())
                raise ApiFailure(exc.code, payload.get("code", ""), payload.get("message", ""))
            except (ValueError, AttributeError):
                raise ApiFailure(exc.code, ErrorCode.HTTP_ERROR, str(exc.reason)) from exc
        except urllib.error.URLError as exc:
            raise ApiFailure(0, "UNREACHABLE", f"cannot reach {self.url}: {exc.reason}") from exc
        return payload.get("results") if isinstance(payload, dict) else payload
