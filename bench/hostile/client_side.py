"""Running the client-side attacks: one client worker process per client under test, one
lying server per attack and client (bench/hostile/client_attacks.py has the scripts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.hostile import report
from bench.hostile.attacks import Attack, Observed, Result
from bench.hostile.client_attacks import DEADLINE, LyingServer
from bench.hostile.procs import Child, PeakSampler, Target
from bench.hostile.wire import error_name


class Worker:
    """A client worker process, restarted when it hangs or dies."""

    def __init__(self, impl: str) -> None:
        self.impl = impl
        self.child: Child | None = None

    async def get(self) -> Child:
        if self.child is None or not self.child.alive:
            self.child = await Child.spawn("-m", "bench.hostile.client_worker", "--impl", self.impl)
            await self.child.line(30.0)
        return self.child

    async def kill(self) -> None:
        if self.child is not None:
            await self.child.stop()
            self.child = None


async def run_client_attack(
    attack: Attack, worker: Worker, witness_port: int, quick: bool
) -> Result:
    server = LyingServer(attack.run, quick)
    await server.start()
    child = await worker.get()
    before = child.rss()
    sampler = PeakSampler(child)
    started = time.monotonic()
    hung, alive, error = False, True, None
    obs = Observed()
    command: dict[str, Any] = {
        "parallel": attack.parallel,
        "method": attack.method,
        "target": f"127.0.0.1:{server.port}",
        "timeout": DEADLINE,
        "witness": f"127.0.0.1:{witness_port}",
    }
    answer: dict[str, Any] = {}
    try:
        answer = await child.ask(command, DEADLINE + attack.seconds + 20.0)
    except asyncio.TimeoutError:
        hung = True
    except EOFError as exc:
        alive, error = False, str(exc)[:200]
    peak = await sampler.stop()
    after = child.rss()
    await server.stop()
    if hung or not alive:
        obs.answer = "client hung" if hung else "client died"
        await worker.kill()
    else:
        obs.answer = (
            f"status {answer['code']}"
            if not answer["code"].startswith("foreign")
            else answer["code"]
        )
        if answer["details"]:
            obs.notes.append(answer["details"][:80])
        if answer["logged_count"]:
            obs.notes.append(f"{answer['logged_count']} log records: {answer['logged'][0][:80]}")
    resets = [
        error_name(s.reset) for c in server.conns for s in c.streams.values() if s.reset is not None
    ]
    obs.figures.update(
        connections=server.connections,
        logged_count=answer.get("logged_count", 0),
        client_resets=resets,
    )
    if resets:
        obs.notes.append(f"client sent RST_STREAM {', '.join(sorted(set(resets)))}")
    result = Result(
        attack=attack.name,
        side="client",
        impl=worker.impl,
        answer=obs.answer,
        expect=attack.expect.text,
        meets=None,
        witness_ok=answer.get("witness") == "OK",
        alive=alive,
        hung=hung,
        seconds=answer.get("elapsed", time.monotonic() - started),
        bytes_sent=server.bytes_sent,
        rss_before=before,
        rss_peak=peak,
        rss_after=after,
        notes=obs.notes,
        figures=obs.figures,
        error=error,
        item=attack.item,
    )
    result.meets = not hung and alive and attack.expect.check(result)
    return result


async def run_client_side(
    attacks: Sequence[Attack], clients: Sequence[str], quick: bool, log: Callable[[str], None]
) -> list[Result]:
    # The witness server is grpcio's: the reference, attacked by no one.
    witness = await Target.start("grpcio")
    workers = [Worker(impl) for impl in clients]
    results: list[Result] = []
    try:
        for attack in attacks:
            runs = await asyncio.gather(
                *(run_client_attack(attack, w, witness.port, quick) for w in workers)
            )
            for result in runs:
                log(report.line(result))
            results += runs
    finally:
        for worker in workers:
            await worker.kill()
        await witness.stop()
    return results
