"""The public API mirrors grpcio name for name: ``asgi_grpc`` <-> ``grpc`` and ``asgi_grpc.aio``
<-> ``grpc.aio``. Every public name must exist in grpcio (or be a documented extra below), every
``__all__`` is sorted, and the names grpcio has that we do not yet are printed (not a failure: the
API is being filled in)."""

from __future__ import annotations

import enum
import importlib
import re
from types import ModuleType

import grpc
import grpc.aio
import pytest

import asgi_grpc
import asgi_grpc.aio

# Public names that grpcio does not have, each with the reason it exists. Keep this short: every
# extra is a name `import asgi_grpc as grpc` users cannot rely on when switching back.
EXTRAS: dict[str, dict[str, str]] = {
    "asgi_grpc": {},
    "asgi_grpc.aio": {},
}

MIRRORS = [(asgi_grpc, grpc), (asgi_grpc.aio, grpc.aio)]

# Every package or module with a public __all__ (the facades).
FACADES = [
    "asgi_grpc",
    "asgi_grpc.aio",
    "asgi_grpc.server",
    "asgi_grpc.client",
    "asgi_grpc._core",
    "asgi_grpc.transcoding",
]


def isort_style(name: str) -> tuple[int, list[int | str]]:
    """The order ruff's RUF022 keeps ``__all__`` in: SCREAMING_SNAKE_CASE, then CamelCase, then
    the rest, each group in natural order (digit runs compare as numbers)."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    parts = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return group, parts


@pytest.mark.parametrize("name", FACADES)
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert name == "asgi_grpc.client", f"{name} has no __all__"
        pytest.skip(f"{name} has no public API yet")
    exported = list(exported)
    assert exported == sorted(exported, key=isort_style), f"{name}.__all__ is not sorted"
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names attributes that do not exist: {missing}"


@pytest.mark.parametrize(("ours", "theirs"), MIRRORS, ids=["grpc", "grpc.aio"])
def test_every_public_name_exists_in_grpcio(
    ours: ModuleType, theirs: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    extras = EXTRAS[ours.__name__]
    exported = set(ours.__all__)
    unknown = sorted(exported - set(dir(theirs)) - set(extras))
    assert not unknown, (
        f"{ours.__name__} exports names {theirs.__name__} does not have: {unknown}; "
        "rename them to grpcio's names or document them in EXTRAS"
    )
    stale = sorted(set(extras) - exported)
    assert not stale, f"EXTRAS documents names {ours.__name__} no longer exports: {stale}"

    # Informational: how much of grpcio's public API is there so far.
    wanted = set(getattr(theirs, "__all__", ()))
    todo = sorted(wanted - exported)
    with capsys.disabled():
        print(
            f"\n[public API] {ours.__name__}: {len(wanted & exported)}/{len(wanted)} of "
            f"{theirs.__name__}.__all__; still missing ({len(todo)}): {', '.join(todo) or '-'}"
        )


@pytest.mark.parametrize(("ours", "theirs"), MIRRORS, ids=["grpc", "grpc.aio"])
def test_mirrored_names_are_the_same_kind_of_thing(ours: ModuleType, theirs: ModuleType) -> None:
    """A class stays a class, a function a function, an enum keeps grpcio's member names."""
    for name in sorted(set(ours.__all__) & set(dir(theirs))):
        mine, reference = getattr(ours, name), getattr(theirs, name)
        if isinstance(reference, ModuleType):
            assert isinstance(mine, ModuleType), name
        elif isinstance(reference, type) and issubclass(reference, enum.Enum):
            assert isinstance(mine, type), name
            assert issubclass(mine, enum.Enum), name
            assert [m.name for m in mine] == [m.name for m in reference], name
        elif isinstance(reference, type):
            assert isinstance(mine, type), f"{ours.__name__}.{name} should be a class"
        elif callable(reference):
            assert callable(mine), f"{ours.__name__}.{name} should be callable"
