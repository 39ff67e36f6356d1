"""``google.api.http`` path templates: parse once, match request paths (sans-IO).

The grammar, from google/api/http.proto::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

``*`` matches one path segment, ``**`` zero or more (only last, before the verb). A variable
that spans one segment is percent-decoded in full; one that spans several keeps ``%2F`` encoded
(the "reserved expansion" rule of http.proto), so a captured value never gains a slash that the
client escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
WILD = "*"
WILD_MANY = "**"


class TemplateError(ValueError):
    """A path template that does not follow http.proto's grammar."""


@dataclass(frozen=True, slots=True)
class Variable:
    field_path: tuple[str, ...]  # proto field names, outermost first
    start: int  # first segment index
    end: int  # one past the last segment index (None-free: ``**`` ends at the path's end)
    segments: tuple[str, ...]  # the variable's own sub-template

    @property
    def multi_segment(self) -> bool:
        return self.segments != (WILD,)


@dataclass(frozen=True, slots=True)
class PathTemplate:
    text: str
    segments: tuple[str, ...]  # literals, "*" and "**"
    variables: tuple[Variable, ...]
    verb: str | None

    @property
    def literal_count(self) -> int:
        """Literal segments, the verb counted as one: the more, the more specific (so
        ``/v1/{name=shelves/*}:raw`` is tried before ``/v1/{name=shelves/*}``, which a ``*``
        would also let match ``shelves/1:raw``)."""
        literals = sum(1 for s in self.segments if s not in (WILD, WILD_MANY))
        return literals + (self.verb is not None)

    def match(self, path: str) -> dict[tuple[str, ...], str] | None:
        """The variables' values when ``path`` (raw, still percent-encoded) matches, else None.

        On every request for every candidate binding: cheap rejections (segment count, then
        literals compared undecoded unless a '%' is there) come first."""
        if path[:1] != "/":
            return None
        body = path[1:]
        if self.verb is not None:
            suffix = ":" + self.verb
            if not body.endswith(suffix):
                return None
            body = body[: -len(suffix)]
        parts = body.split("/") if body else []
        segments = self.segments
        many = segments[-1:] == (WILD_MANY,)
        fixed = len(segments) - 1 if many else len(segments)
        count = len(parts)
        if count < fixed if many else count != fixed:
            return None
        for i in range(fixed):
            expected, part = segments[i], parts[i]
            if expected == WILD:
                if not part:
                    return None
            elif part != expected and ("%" not in part or unquote(part) != expected):
                return None
        if many and not all(parts[fixed:]):
            return None
        values: dict[tuple[str, ...], str] = {}
        for variable in self.variables:
            end = count if variable.segments[-1:] == (WILD_MANY,) else variable.end
            raw = "/".join(parts[variable.start : end])
            if "%" in raw:
                raw = _decode_reserved(raw) if variable.multi_segment else unquote(raw)
            values[variable.field_path] = raw
        return values

    def openapi_path(self) -> tuple[str, dict[str, str]]:
        """``/v1/{name}`` style path for OpenAPI, and each variable's regex (for multi-segment
        variables, whose value holds slashes) keyed by the dotted field path."""
        out: list[str] = []
        patterns: dict[str, str] = {}
        index = 0
        wild = 0
        while index < len(self.segments):
            variable = next((v for v in self.variables if v.start == index), None)
            if variable is not None:
                name = ".".join(variable.field_path)
                out.append("{" + name + "}")
                if variable.multi_segment:
                    patterns[name] = "^" + "/".join(_regex(s) for s in variable.segments) + "$"
                index = variable.end
                continue
            segment = self.segments[index]
            if segment in (WILD, WILD_MANY):
                out.append(f"{{_wildcard{wild}}}")  # an unnamed wildcard is still a parameter
                wild += 1
            else:
                out.append(segment)
            index += 1
        text = "/" + "/".join(out)
        return (text + ":" + self.verb if self.verb else text), patterns


def _regex(segment: str) -> str:
    if segment == WILD:
        return "[^/]+"
    if segment == WILD_MANY:
        return ".*"
    return re.escape(segment)


def _decode_reserved(raw: str) -> str:
    # Everything but an escaped slash is decoded: split on it, decode the pieces, rejoin.
    pieces = re.split(r"(%2[Ff])", raw)
    return "".join(p if i % 2 else unquote(p) for i, p in enumerate(pieces))


def parse_template(text: str) -> PathTemplate:
    if not text.startswith("/"):
        raise TemplateError(f"path template {text!r} must start with '/'")
    rest = text[1:]
    verb: str | None = None
    # The verb is a ':' after the last '/' and outside braces.
    last = rest.rfind("/")
    colon = rest.find(":", last + 1)
    if colon != -1 and "}" not in rest[colon:]:
        verb = rest[colon + 1 :]
        rest = rest[:colon]
        if not verb:
            raise TemplateError(f"empty verb in {text!r}")
    segments: list[str] = []
    variables: list[Variable] = []
    for token in _split_top(rest, text):
        if token.startswith("{"):
            if not token.endswith("}"):
                raise TemplateError(f"unclosed variable in {text!r}")
            inner = token[1:-1]
            name, equals, sub = inner.partition("=")
            if equals and not sub:
                raise TemplateError(f"empty variable template in {text!r}")
            path = tuple(name.split("."))
            if not all(_IDENT.match(p) for p in path):
                raise TemplateError(f"bad field path {name!r} in {text!r}")
            sub_segments = tuple(sub.split("/")) if sub else (WILD,)
            if any("{" in s or "}" in s or not s for s in sub_segments):
                raise TemplateError(f"bad variable template {inner!r} in {text!r}")
            start = len(segments)
            segments.extend(sub_segments)
            variables.append(Variable(path, start, len(segments), sub_segments))
        else:
            if not token:
                raise TemplateError(f"empty segment in {text!r}")
            segments.append(token)
    if WILD_MANY in segments[:-1]:
        raise TemplateError(f"'**' must be the last segment in {text!r}")
    return PathTemplate(text, tuple(segments), tuple(variables), verb)


def _split_top(rest: str, text: str) -> list[str]:
    """Split on '/' outside braces (a variable's sub-template has its own slashes)."""
    tokens: list[str] = []
    depth = 0
    current: list[str] = []
    for char in rest:
        if char == "{":
            depth += 1
            if depth > 1:
                raise TemplateError(f"nested variables in {text!r}")
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"unbalanced '}}' in {text!r}")
        if char == "/" and depth == 0:
            tokens.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise TemplateError(f"unclosed variable in {text!r}")
    tokens.append("".join(current))
    # A variable token splits into its sub-template's segments later; "" is an empty segment.
    return tokens
