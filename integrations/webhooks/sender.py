"""Sends one outbox message to its endpoint: signed with `standardwebhooks`, through the SSRF guard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from databases import Database
from standardwebhooks.webhooks import Webhook

from hub.outbox import Attempt
from hub.store import webhooks as webhooks_store
from hub.store.outbox import Delivery
from integrations.webhooks.guard import IPNetwork, guarded_session, refused_error

#: Answers worth another try; any other non-2xx answer fails the message at once.
RETRY_STATUSES = frozenset({408, 425, 429})
MAX_REDIRECTS = 5


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    raw = headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def signed_headers(secret: str, message_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (a fresh timestamp each attempt)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }


class WebhookSender:
    """One HTTP session for every endpoint; one call per outbox message."""

    def __init__(
        self,
        db: Database,
        allow: Sequence[IPNetwork],
        timeout_s: float,
        user_agent: str = "3DPrintForge",
    ) -> None:
        self.db = db
        self.allow = tuple(allow)
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self.user_agent = user_agent

    def session(self) -> aiohttp.ClientSession:
        """The guarded client session (made on first use, on the running loop)."""
        if self._session is None or self._session.closed:
            self._session = guarded_session(self.allow, self.timeout_s)
        return self._session

    async def close(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, delivery: Delivery) -> Attempt:
        """POST the message's body to its endpoint and judge the answer."""
        hook = await webhooks_store.get(self.db, delivery.target_id)
        if hook is None:
            return Attempt(False, error="the endpoint was deleted", retry=False)
        body = delivery.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            **signed_headers(hook.secret, delivery.event_id, body, datetime.now(UTC)),
        }
        try:
            async with self.session().post(
                hook.url, data=body, headers=headers, max_redirects=MAX_REDIRECTS
            ) as response:
                status = response.status
                after = retry_after(response.headers)
                # Read (a bounded part of) the answer so the connection can be reused.
                await response.content.read(65536)
        except TimeoutError:
            return Attempt(False, error=f"no answer within {self.timeout_s:g} s (timeout)")
        except aiohttp.TooManyRedirects:
            return Attempt(False, error=f"more than {MAX_REDIRECTS} redirects", retry=False)
        except (aiohttp.ClientError, OSError) as exc:
            refused = refused_error(exc)
            if refused is not None:
                return Attempt(False, error=refused, retry=False)
            return Attempt(False, error=f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            raise
        if 200 <= status < 300:
            return Attempt(True, status=status)
        retry = status >= 500 or status in RETRY_STATUSES
        return Attempt(False, status=status, error=f"HTTP {status}", retry=retry, retry_after=after)
