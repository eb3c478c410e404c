"""The values the fuzzers generate, as plain data classes: an exchange, the answer to a callout or
a gRPC call, a host fault plan. Building, replaying and printing them needs no hypothesis (the
guided engine, ``run`` and the replay of findings use them without it); the strategies that draw
them are in :mod:`emulator.fuzz.strategies`, which exports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from abi import Status, fault_statuses
from abi.records import field, record

from ..http.messages import Request, Response, scenario_bytes, scenario_headers

__all__: list[str] = []  # public through emulator.fuzz.strategies

Pairs = list[tuple[bytes, bytes]]


@record
class Exchange:
    """One generated HTTP exchange: the request, the upstream response (or ``None``), and a pause."""

    request: Request
    response: Response | None = None
    advance_ms: float = 0.0
    """Virtual time to let pass after the request (ticks and callout timeouts fire)."""

    @property
    def request_message(self) -> Request:
        """The same as :attr:`request` (its older name)."""
        return self.request

    @property
    def response_message(self) -> Response | None:
        """The same as :attr:`response` (its older name)."""
        return self.response

    def to_scenario(self, name: str = "") -> dict[str, Any]:
        """One entry of a scenario file's ``streams``."""
        out: dict[str, Any] = {}
        if name:
            out["name"] = name
        out["request"] = self.request.to_scenario()
        if self.advance_ms:
            out["advance_ms"] = self.advance_ms
        if self.response is not None:
            out["response"] = self.response.to_scenario()
        return out


_CONNECT_FAILURE_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"


@record
class CalloutResponse:
    """How an HTTP callout is answered.

    ``kind``: ``respond`` (status, headers, body, trailers), ``fail`` (Envoy's onFailure),
    ``timeout`` (a successful 504, as Envoy reports it), ``connect_failure`` (a successful 503) or
    ``none`` (never answered: the call stays pending until its timeout fires).
    """

    kind: str = "respond"
    status: int = 200
    headers: Pairs = field(default_factory=list)
    body: bytes = b""
    trailers: Pairs | None = None

    def answer(self, call: Any) -> None:
        """Answer a pending :class:`emulator.callouts.HttpCall` (``none`` leaves it pending)."""
        if self.kind == "respond":
            call.respond(self.status, self.headers, self.body, self.trailers)
        elif self.kind == "fail":
            call.fail()
        elif self.kind == "timeout":
            call.timeout()
        elif self.kind == "connect_failure":
            call.connect_failure()

    def to_scenario(self) -> Any:
        """The ``response`` of a scenario ``http_calls`` responder (``None`` for ``none``)."""
        if self.kind == "none":
            return None
        if self.kind in ("fail", "timeout"):
            return self.kind
        if self.kind == "connect_failure":
            return {
                "status": 503,
                "headers": scenario_headers([(b"content-length", str(len(_CONNECT_FAILURE_BODY)).encode()), (b"content-type", b"text/plain")]),
                "body": _CONNECT_FAILURE_BODY.decode(),
            }
        out: dict[str, Any] = {"status": self.status, "headers": scenario_headers(self.headers), "body": scenario_bytes(self.body)}
        if self.trailers:
            out["trailers"] = scenario_headers(self.trailers)
        return out


@record
class GrpcResponse:
    """How a unary gRPC call is answered: ``message`` (success), ``close`` with a status, ``timeout``
    (closed with DEADLINE_EXCEEDED) or ``none`` (left pending)."""

    kind: str = "message"
    message: bytes = b""
    status: int = 0
    text: str = ""

    def answer(self, call: Any) -> None:
        """Answer a pending :class:`emulator.callouts.GrpcCall`."""
        if self.kind == "message":
            call.respond(self.message)
        elif self.kind == "close":
            call.fail(self.status, self.text)
        elif self.kind == "timeout":
            call.timeout()

    def to_scenario(self) -> dict[str, Any] | None:
        """The ``response`` of a scenario ``grpc_calls`` responder (``None`` for ``none``)."""
        if self.kind == "message":
            return {"message": scenario_bytes(self.message)}
        if self.kind == "close":
            return {"status": self.status, "message": self.text}
        if self.kind == "timeout":
            return {"status": 4, "message": "timeout"}
        return None

    def to_responder(self, cluster: str) -> dict[str, Any] | None:
        """A responder dict as :meth:`emulator.callouts.GrpcCalls.add_responder` stores it."""
        if self.kind == "none":
            return None
        if self.kind == "message":
            return {"cluster": cluster, "service": None, "method": None, "message": self.message, "status": None, "text": ""}
        status, text = (4, "timeout") if self.kind == "timeout" else (self.status, self.text)
        return {"cluster": cluster, "service": None, "method": None, "message": None, "status": status, "text": text}


FAULT_STATUSES: dict[str, tuple[Status, ...]] = {name: tuple(Status(int(v)) for v in statuses) for name, statuses in fault_statuses().items()}
"""The error statuses each host call can answer in Envoy (abi/signatures.py ``!`` column): what fault injection draws."""


@record(frozen=True)
class FaultRule:
    """Make calls to ``function`` return ``status`` instead of running.

    Calls are counted per rule (those to ``function``, made from ``callback`` if given: e.g.
    ``"proxy_on_request_headers"``); the ``nth`` one (1-based) and the ``count - 1`` after it fail
    (``count=None``: every one from the ``nth`` on).
    """

    function: str
    status: int
    nth: int = 1
    count: int | None = 1
    callback: str | None = None

    def covers(self, index: int) -> bool:
        """Whether the ``index``-th (1-based) matching call fails."""
        return index >= self.nth and (self.count is None or index < self.nth + self.count)

    @property
    def status_name(self) -> str:
        """``NotFound``, ``InternalFailure``... (or the raw value when it names no status)."""
        try:
            return Status(self.status).name
        except ValueError:
            return str(self.status)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (``status`` also by name)."""
        return {
            "function": self.function,
            "status": self.status,
            "status_name": self.status_name,
            "nth": self.nth,
            "count": self.count,
            "callback": self.callback,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        """Inverse of :meth:`to_json`."""
        return cls(data["function"], int(data["status"]), int(data.get("nth", 1)), data.get("count", 1), data.get("callback"))

    def __str__(self) -> str:
        when = f"call #{self.nth}" if self.count == 1 else (f"calls #{self.nth}+" if self.count is None else f"calls #{self.nth}..#{self.nth + self.count - 1}")
        where = f" in {self.callback}" if self.callback else ""
        return f"{self.function} -> {self.status_name} ({when}{where})"


@record(frozen=True)
class FaultPlan:
    """A set of :class:`FaultRule`; the first rule covering a call decides its status."""

    rules: tuple[FaultRule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def to_json(self) -> list[dict[str, Any]]:
        """JSON-ready form."""
        return [r.to_json() for r in self.rules]

    @classmethod
    def from_json(cls, data: Iterable[dict[str, Any]]) -> FaultPlan:
        """Inverse of :meth:`to_json`."""
        return cls(tuple(FaultRule.from_json(d) for d in data))

    def __str__(self) -> str:
        return "; ".join(map(str, self.rules)) or "(no faults)"
