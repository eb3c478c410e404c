"""Strict host-call expectations, in the style of proxy-wasm test-framework (opt-in).

    with host.expect_calls() as expect:
        expect.call("proxy_get_header_map_value", map_type="HTTP_REQUEST_HEADERS", key=":path")
        expect.call("proxy_http_call", upstream="auth").returns(Status.BadArgument)   # inject an error
        stream.send_request_headers({...})
    # leaving the block fails if an expected call did not happen

Expected calls must come in order; a call to a function that is not expected fails the test
(``proxy_log`` and WASI calls are allowed unless expected explicitly). Argument matchers compare
with the decoded arguments (see :mod:`emulator.trace`): a value, or a predicate, or ``ANY``.
``returns(status)`` skips the real implementation and returns the status; ``returns(data=...)``
makes a ``ptr**`` call return that data with Ok.
"""

from __future__ import annotations

from typing import Any

from abi import HOST_FUNCTIONS, Status
from abi.records import field, record

from .errors import EmulatorError

__all__ = ["ANY", "ExpectationError", "Expectations", "ExpectedCall"]


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
"""Matches any value of an argument."""


class ExpectationError(EmulatorError, AssertionError):
    """A host call that was not expected, came out of order, or was expected and never came."""


@record
class ExpectedCall:
    """One expected host call: function, argument matchers and an optional injected result."""

    function: str
    matchers: dict[str, Any]
    status: int | None = None
    data: bytes | None = None
    times: int = 1
    seen: int = 0

    def returns(self, status: int | None = None, *, data: bytes | str | None = None) -> ExpectedCall:
        """Answer with ``status`` (and, for ``ptr**`` calls, ``data``) instead of the real host.

        ``data`` needs a function that returns data through a ``ptr**`` out-parameter (a copy-out
        pair of the ABI table, e.g. ``proxy_get_property``); for any other it raises ValueError.
        """
        sig = HOST_FUNCTIONS.get(self.function)
        if data is not None and sig is not None and not sig.copy_outs:
            returning = ", ".join(n for n, s in HOST_FUNCTIONS.items() if s.copy_outs)
            raise ValueError(f"{self.function} returns no data through a ptr** out-parameter, so returns(data=...) cannot apply; these do: {returning}")
        self.status = int(status) if status is not None else (Status.Ok if data is not None else None)
        self.data = data.encode() if isinstance(data, str) else data
        return self

    def repeatedly(self, times: int) -> ExpectedCall:
        """Expect this call ``times`` times in a row."""
        self.times = times
        return self

    def matches(self, function: str, args: dict[str, Any]) -> str | None:
        """``None`` if the call matches, else why not."""
        if function != self.function:
            return f"expected {self.describe()}, got {function}"
        for name, want in self.matchers.items():
            if name not in args:
                return f"{function} has no argument {name!r} (it has {sorted(args)})"
            got = args[name]
            if want is ANY:
                continue
            if callable(want) and not isinstance(want, str | bytes):
                if not want(got):
                    return f"{function}: argument {name}={got!r} does not satisfy the predicate"
            elif _norm(got) != _norm(want):
                return f"{function}: argument {name}={got!r}, expected {want!r}"
        return None

    def describe(self) -> str:
        """``function(arg=value, ...)``."""
        return f"{self.function}({', '.join(f'{k}={v!r}' for k, v in self.matchers.items())})"


def _norm(v: Any) -> Any:
    if isinstance(v, bytes):
        try:
            return v.decode()
        except UnicodeDecodeError:
            return v
    if isinstance(v, list | tuple):
        return [_norm(x) for x in v]
    return v


@record
class Expectations:
    """An ordered list of expected host calls, checked as the filter makes them."""

    allowed: set[str] = field(default_factory=lambda: {"proxy_log"})
    expected: list[ExpectedCall] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    _pos: int = 0

    def call(self, function: str, **matchers: Any) -> ExpectedCall:
        """Expect ``function`` next (after the previously declared calls)."""
        exp = ExpectedCall(function, matchers)
        self.expected.append(exp)
        return exp

    def allow(self, *functions: str) -> None:
        """Let these functions be called any time without being expected."""
        self.allowed.update(functions)

    def check(self, function: str, args: dict[str, Any]) -> ExpectedCall | None:
        """Match one host call; returns the expectation (for injected results) or ``None`` if allowed."""
        if self._pos < len(self.expected):
            exp = self.expected[self._pos]
            why = exp.matches(function, args)
            if why is None:
                exp.seen += 1
                if exp.seen >= exp.times:
                    self._pos += 1
                return exp
            if function in self.allowed:
                return None
            self.violations.append(why)
            raise ExpectationError(why)
        if function in self.allowed:
            return None
        why = f"unexpected host call {function}({', '.join(f'{k}={v!r}' for k, v in args.items())}): no more calls were expected"
        self.violations.append(why)
        raise ExpectationError(why)

    def verify(self) -> None:
        """Raise if a call was unexpected or an expected call never came."""
        problems = list(self.violations)
        left = self.expected[self._pos :]
        if left:
            problems.append("expected host calls that never happened:\n  " + "\n  ".join(e.describe() for e in left))
        if problems:
            raise ExpectationError("\n".join(problems))
