"""What an attack is, what it observed, and the expectation that judges it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Observed:
    """What one attack saw, filled in by the attack and then by the runner."""

    answer: str = "nothing"
    bytes_sent: int = 0
    notes: list[str] = field(default_factory=list)
    #: Attack-specific figures the expectation looks at (accepted bytes, handlers left, ...).
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    attack: str
    side: str  # "server" or "client"
    impl: str
    answer: str
    expect: str
    meets: bool | None
    witness_ok: bool
    alive: bool
    hung: bool
    seconds: float
    bytes_sent: int
    rss_before: float
    rss_peak: float
    rss_after: float
    notes: list[str]
    figures: dict[str, Any]
    error: str | None = None
    #: The item of issue 9 the attack reproduces, if any.
    item: int | None = None
    #: How long the witness call took (server side).
    witness_seconds: float = 0.0

    @property
    def growth(self) -> float:
        return self.rss_peak - self.rss_before


Check = Callable[["Result"], bool]


@dataclass(frozen=True)
class Expect:
    """The fixed behaviour, in words (the table's column) and as a check (the verdict)."""

    text: str
    check: Check

    def __and__(self, other: Expect) -> Expect:
        return Expect(f"{self.text}; {other.text}", lambda r: self.check(r) and other.check(r))

    def __or__(self, other: Expect) -> Expect:
        return Expect(f"{self.text} or {other.text}", lambda r: self.check(r) or other.check(r))


def answered(*texts: str, label: str | None = None) -> Expect:
    """The answer mentions one of ``texts`` (e.g. "GOAWAY PROTOCOL_ERROR", "RST REFUSED")."""
    return Expect(label or " or ".join(texts), lambda r: any(t in r.answer for t in texts))


def status(*names: str) -> Expect:
    return answered(*(f"status {n}" for n in names), label="status " + "/".join(names))


def rss_growth(mib: float) -> Expect:
    return Expect(f"RSS growth < {mib:g} MiB", lambda r: r.growth < mib)


def rss_kept(mib: float) -> Expect:
    return Expect(f"RSS kept after < {mib:g} MiB", lambda r: r.rss_after - r.rss_before < mib)


def prompt_witness(seconds: float = 1.0) -> Expect:
    """Other connections are not starved: the witness answered within ``seconds``."""
    return Expect(
        f"witness answered within {seconds:g} s",
        lambda r: r.witness_ok and r.witness_seconds < seconds,
    )


def figure(name: str, text: str, test: Callable[[Any], bool]) -> Expect:
    return Expect(text, lambda r: name in r.figures and bool(test(r.figures[name])))


@dataclass(frozen=True)
class Attack:
    name: str
    side: str
    #: Server side: ``(Ctx) -> Observed``; client side: the lying server's script.
    run: Callable[..., Awaitable[Any]]
    expect: Expect
    quick: bool = False
    #: Upper bound of the attack's own duration, in seconds (the runner adds a margin).
    seconds: float = 5.0
    #: Client side: concurrent calls on the one channel.
    parallel: int = 1
    #: Client side: "unary", or "bidi" (a call whose client keeps writing).
    method: str = "unary"
    #: The item of issue 9 this attack reproduces, if any.
    item: int | None = None
