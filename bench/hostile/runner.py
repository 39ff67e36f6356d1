"""``python -m bench hostile``: run the attacks against each implementation, print the table."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path

from bench.hostile import client_attacks, client_side, report, server_attacks
from bench.hostile.attacks import Attack, Observed, Result
from bench.hostile.procs import PeakSampler, Spare, Target, active_handlers, witness

#: Margin on top of an attack's own bound before the run counts it as hung.
HANG_MARGIN = 20.0
SERVER_IMPLS = ("asgi_grpc", "grpcio")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run_server_attack(attack: Attack, target: Target, quick: bool) -> Result:
    port = target.port

    async def active() -> int | None:
        return await active_handlers(port)

    ctx = server_attacks.Ctx(port=port, quick=quick, active=active)
    before = target.rss()
    sampler = PeakSampler(target)
    started = time.monotonic()
    hung, error = False, None
    obs = Observed()
    try:
        obs = await asyncio.wait_for(attack.run(ctx), attack.seconds + HANG_MARGIN)
    except asyncio.TimeoutError:
        hung = True
        obs.answer = "attack hung"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        obs.answer = f"suite error {error}"
    seconds = time.monotonic() - started
    peak = await sampler.stop()
    await asyncio.sleep(0.3)
    after = target.rss()
    alive = target.alive
    witness_ok, witness_seconds = await witness(port) if alive else (False, 0.0)
    if witness_seconds > 1.0:
        obs.notes.insert(0, f"witness took {witness_seconds:.1f} s")
    if not alive:
        obs.notes.append(f"server died: {target.tail(300)}")
    result = Result(
        attack=attack.name,
        side="server",
        impl=target.impl,
        answer=obs.answer,
        expect=attack.expect.text,
        meets=None,
        witness_ok=witness_ok,
        alive=alive,
        hung=hung,
        seconds=seconds,
        bytes_sent=obs.bytes_sent,
        rss_before=before,
        rss_peak=peak,
        rss_after=after,
        notes=obs.notes,
        figures=obs.figures,
        error=error,
        item=attack.item,
        witness_seconds=witness_seconds,
    )
    result.meets = not hung and error is None and attack.expect.check(result)
    return result


async def run_server_side(
    attacks: Sequence[Attack], impls: Sequence[str], quick: bool
) -> list[Result]:
    results: list[Result] = []
    spares = {impl: Spare(impl) for impl in impls}
    # In --quick, attacks judged by their answer alone share a server (it saves a process start
    # per attack); those whose verdict reads memory or running handlers always get a fresh one.
    shared: dict[str, Target] = {}
    # Servers done with are stopped in the background (a stop can take a few seconds).
    stopping: list[asyncio.Task[None]] = []

    async def target_for(attack: Attack, impl: str) -> Target:
        current = shared.pop(impl, None)
        if current is not None and quick and attack.name in server_attacks.SHARED and current.alive:
            return current
        if current is not None:
            stopping.append(asyncio.ensure_future(current.stop()))
        return await spares[impl].take()

    try:
        for attack in attacks:
            # The implementations side by side: each attack against each.
            targets = [await target_for(attack, impl) for impl in impls]
            runs = await asyncio.gather(*(run_server_attack(attack, t, quick) for t in targets))
            for result in runs:
                log(report.line(result))
            results += runs
            for target in targets:
                shared[target.impl] = target
    finally:
        await asyncio.gather(*stopping, *(t.stop() for t in shared.values()))
        for spare in spares.values():
            await spare.close()
    return results


def select(attacks: Sequence[Attack], quick: bool, only: Sequence[str]) -> list[Attack]:
    if only:
        chosen = [a for a in attacks if a.name in only]
    else:
        chosen = [a for a in attacks if a.quick or not quick]
    return chosen


async def run(args: argparse.Namespace) -> list[Result]:
    only = [name for name in (args.only or "").split(",") if name]
    impls = [name for name in (args.against or "asgi_grpc,grpcio").split(",") if name]
    sides: list[Awaitable[list[Result]]] = []
    if args.side in ("both", "server"):
        chosen = select(server_attacks.ATTACKS, args.quick, only)
        server_impls = [i for i in impls if i in SERVER_IMPLS]
        if chosen and server_impls:
            sides.append(run_server_side(chosen, server_impls, args.quick))
    if args.side in ("both", "client"):
        chosen = select(client_attacks.ATTACKS, args.quick, only)
        # "asgi_grpc" picks both of its clients; "asgi_grpc_sync" just that one.
        clients = [
            c for c in client_attacks.CLIENTS if any(c == i or c.startswith(i + "_") for i in impls)
        ]
        if chosen and clients:
            sides.append(client_side.run_client_side(chosen, clients, args.quick, log))
    if args.quick:
        # Both directions at once: the client side mostly waits on deadlines. A full run keeps
        # them apart, so that neither side's timings and memory figures disturb the other's.
        return [r for side in await asyncio.gather(*sides) for r in side]
    return [r for side in sides for r in await side]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hostile", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the CI subset, well under 2 minutes")
    parser.add_argument("--only", help="comma-separated attack names")
    parser.add_argument(
        "--against",
        help="implementations to attack (default asgi_grpc,grpcio; with --fuzz: asgi_grpc)",
    )
    parser.add_argument("--side", choices=["both", "server", "client"], default="both")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--fuzz", action="store_true", help="run the frame fuzzer instead")
    parser.add_argument("--seconds", type=float, default=60.0, help="fuzzing time")
    parser.add_argument("--seed", type=int, help="fuzzer seed (default: random, printed)")
    parser.add_argument("--list", action="store_true", help="list the attacks and exit")
    args = parser.parse_args(argv)
    everything = [*server_attacks.ATTACKS, *client_attacks.ATTACKS]
    assert len({a.name for a in everything}) == len(everything), "attack names must be unique"
    if args.list:
        for attack in everything:
            quick = "quick" if attack.quick else "     "
            print(f"{attack.side:6} {quick} {attack.name:28} {attack.expect.text}")
        return 0
    unknown = set(filter(None, (args.only or "").split(","))) - {a.name for a in everything}
    if unknown:
        parser.error(f"unknown attacks: {', '.join(sorted(unknown))} (see --list)")
    if args.fuzz:
        from bench.hostile import fuzz

        impls = (args.against or "asgi_grpc").split(",")
        if len(impls) != 1 or impls[0] not in SERVER_IMPLS:
            parser.error(f"--fuzz takes one server: --against {' or '.join(SERVER_IMPLS)}")
        return fuzz.main(args.seconds, args.seed, args.json, impls[0])
    started = time.monotonic()
    results = asyncio.run(run(args))
    print(report.markdown(results))
    log(f"{len(results)} runs in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    # The exit code reflects only what must hold on any build: no crash, no hang, witness served.
    bad = [r for r in results if r.hung or not r.alive or not r.witness_ok or r.error]
    return 1 if bad else 0
