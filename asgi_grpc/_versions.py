"""The installed version of a dependency we patch, without ``importlib.metadata``.

``importlib.metadata`` brings ``email``, ``zipfile``, ``csv`` and more: ~3 MiB in every server
process, for the two version checks that guard our patches (Hypercorn has no ``__version__``).
The version is the package's ``__version__``, else the ``Version:`` line of its ``.dist-info``
next to it; ``importlib.metadata`` only when neither is there (an egg, a zip import).
"""

from __future__ import annotations

import sys
from pathlib import Path


def installed_version(distribution: str, package: str | None = None) -> str:
    """The version of ``distribution`` whose top-level import package is ``package`` (default:
    the same name), which must be imported already."""
    module = sys.modules[package or distribution]
    found = getattr(module, "__version__", None)
    if isinstance(found, str):
        return found
    location = getattr(module, "__file__", None)
    if location is not None:
        site = Path(location).parent.parent
        for info in site.glob(f"{distribution.replace('-', '_')}-*.dist-info"):
            try:
                with open(info / "METADATA", encoding="utf-8") as metadata:
                    for line in metadata:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
                        if not line.strip():
                            break  # the headers ended
            except OSError:
                continue
    from importlib.metadata import version

    return version(distribution)
