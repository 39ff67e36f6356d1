"""Where connections go: gRPC target strings parsed into socket addresses (sans-IO).

gRPC's naming syntax (doc/naming.md), the forms grpcio accepts::

    host:port  host  dns:host:port  dns:///host:port  dns://authority/host:port
    ipv4:1.2.3.4:50051,5.6.7.8  ipv6:[::1]:50051,[::2]  [::1]:50051
    unix:relative/or/absolute/path  unix:///absolute/path  unix-abstract:name

The port defaults to 443 as in grpcio. Names are not resolved here: the event loop resolves
host names when it connects (and tries every address it gets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

DEFAULT_PORT = 443

__all__ = ["DEFAULT_PORT", "Address", "TCPAddress", "Target", "UnixAddress", "parse_target"]


@dataclass(frozen=True)
class TCPAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class UnixAddress:
    """A unix socket path; abstract names start with a NUL byte (Linux only)."""

    path: str

    def __str__(self) -> str:
        if self.path.startswith("\0"):
            return f"unix-abstract:{self.path[1:]}"
        return f"unix:{self.path}"


# Union, not |: this alias is evaluated at run time and the package supports 3.10's typing.
Address = Union[TCPAddress, UnixAddress]  # noqa: UP007


@dataclass(frozen=True)
class Target:
    """A parsed target: the addresses to try in order, and the ``:authority`` to send."""

    addresses: tuple[Address, ...]
    authority: str


def _host_port(text: str, default_port: int) -> TCPAddress:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 address in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after IPv6 address in {text!r}")
        port = rest[1:]
    elif text.count(":") > 1:
        # A bare IPv6 address without brackets (allowed after "ipv6:") has no port.
        host, port = text, ""
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"missing host in {text!r}")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ValueError(f"invalid port in {text!r}") from None
    if not 0 <= number < 65536:  # port 0 parses; connecting to it fails (UNAVAILABLE), as grpcio
        raise ValueError(f"port out of range in {text!r}")
    return TCPAddress(host, number)


def parse_target(target: str, *, default_port: int = DEFAULT_PORT) -> Target:
    """Parse a gRPC target string; ``ValueError`` says what is wrong with it."""
    if target.startswith("unix-abstract:"):
        name = target[len("unix-abstract:") :]
        return Target((UnixAddress("\0" + name),), "localhost")
    if target.startswith("unix:"):
        path = target[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
            if not path.startswith("/"):
                raise ValueError(f"unix:// needs an absolute path: {target!r}")
        if not path:
            raise ValueError(f"empty unix socket path: {target!r}")
        return Target((UnixAddress(path),), "localhost")
    for scheme in ("ipv4:", "ipv6:"):
        if target.startswith(scheme):
            rest = target[len(scheme) :]
            addresses = tuple(_host_port(part, default_port) for part in rest.split(",") if part)
            if not addresses:
                raise ValueError(f"no addresses in {target!r}")
            return Target(addresses, str(addresses[0]))
    rest = target
    if rest.startswith("dns:"):
        rest = rest[len("dns:") :]
        if rest.startswith("//"):
            # dns://[dns-server]/host:port; the DNS server part is not supported and ignored.
            _, _, rest = rest[2:].partition("/")
    address = _host_port(rest, default_port)
    # The authority is the target as written, like grpcio ("localhost", not "localhost:443").
    return Target((address,), rest)
