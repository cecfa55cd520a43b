"""A JSON-RPC 2.0 client over an aiohttp WebSocket, as Moonraker speaks it."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp

NotificationHandler = Callable[[str, list[Any]], None]


class RpcError(Exception):
    """The server answered a call with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


class JsonRpcClient:
    """Calls with ids and timeouts; notifications go to `on_notification`."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        on_notification: NotificationHandler,
        on_message: Callable[[], None],
    ) -> None:
        self._ws = ws
        self._on_notification = on_notification
        self._on_message = on_message
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}

    async def call(self, method: str, params: dict[str, Any] | None, deadline_s: float) -> Any:
        """Send `method` and return its result; RpcError, TimeoutError or ConnectionError."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        try:
            async with asyncio.timeout(deadline_s):
                await self._ws.send_str(json.dumps(message))
                return await future
        finally:
            self._pending.pop(request_id, None)

    async def run(self) -> None:
        """Read until the socket closes; then fail pending calls and raise ConnectionError."""
        try:
            async for frame in self._ws:
                if frame.type is aiohttp.WSMsgType.TEXT:
                    self._on_message()
                    self._dispatch(frame.data)
                elif frame.type is aiohttp.WSMsgType.ERROR:
                    break
        finally:
            self._fail_all("the WebSocket closed")
        raise ConnectionError(f"WebSocket closed (code {self._ws.close_code})")

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if "method" in message and "id" not in message:
            params = message.get("params")
            self._on_notification(message["method"], params if isinstance(params, list) else [])
            return
        entry = self._pending.get(message.get("id"))  # type: ignore[arg-type]
        if entry is None:
            return
        method, future = entry
        if future.done():
            return
        error = message.get("error")
        if isinstance(error, dict):
            future.set_exception(
                RpcError(method, int(error.get("code", -1)), str(error.get("message", "")))
            )
        else:
            future.set_result(message.get("result"))

    def _fail_all(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for method, future in pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"{method}: {reason}"))
