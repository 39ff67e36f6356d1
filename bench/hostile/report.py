"""The suite's tables: one row per attack, implementations side by side, and a verdict."""

from __future__ import annotations

from collections.abc import Sequence

from bench.hostile.attacks import Result


def cell(result: Result) -> str:
    """One implementation's outcome of one attack, compact enough for a table cell."""
    parts = [result.answer.replace("|", "/")]
    if result.side == "client":
        parts.append(f"{result.figures.get('connections', '?')} conn, {result.seconds:.1f} s")
    rss = f"RSS {result.rss_before:.0f}→{result.rss_peak:.0f}"
    if abs(result.rss_after - result.rss_peak) >= 1:
        rss += f"→{result.rss_after:.0f}"
    parts.append(rss + " MiB")
    if not result.alive:
        parts.append("**CRASHED**")
    if result.hung:
        parts.append("**HUNG**")
    parts.append("witness ok" if result.witness_ok else "**witness FAILED**")
    parts += [note.replace("|", "/") for note in result.notes[:2]]
    return "<br>".join(parts)


def verdict(result: Result) -> str:
    return "meets" if result.meets else "**misses**"


def line(result: Result) -> str:
    """One progress line (stderr)."""
    flags = "" if result.alive and result.witness_ok and not result.hung else " !!"
    return (
        f"{result.side:6} {result.attack:24} {result.impl:14} {verdict(result):10} "
        f"{result.seconds:5.1f}s {result.answer[:70]}{flags}"
    )


def markdown(results: Sequence[Result]) -> str:
    out: list[str] = []
    for side, title in (("server", "Server side"), ("client", "Client side")):
        rows = [r for r in results if r.side == side]
        if not rows:
            continue
        impls = list(dict.fromkeys(r.impl for r in rows))
        attacks = list(dict.fromkeys(r.attack for r in rows))
        out.append(f"### {title}\n")
        header = ["attack", "expected (fixed behaviour)"]
        for impl in impls:
            header += [impl, "verdict"]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + " --- |" * len(header))
        by_key = {(r.attack, r.impl): r for r in rows}
        for attack in attacks:
            first = next(r for r in rows if r.attack == attack)
            name = f"`{attack}`" + (f" (#{first.item})" if first.item else "")
            row = [name, first.expect]
            for impl in impls:
                result = by_key.get((attack, impl))
                row += [cell(result), verdict(result)] if result else ["", ""]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        for impl in impls:
            mine = [r for r in rows if r.impl == impl]
            met = sum(bool(r.meets) for r in mine)
            safe = sum(r.alive and r.witness_ok and not r.hung for r in mine)
            out.append(
                f"- {impl}: meets {met}/{len(mine)} expectations; "
                f"alive, not hung and witness served in {safe}/{len(mine)}"
            )
        out.append("")
    return "\n".join(out)
