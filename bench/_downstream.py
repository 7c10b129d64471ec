"""A simulated downstream service with a capacity, for the flow-control benchmark.

``python -m bench._downstream --port P [--capacity 8] [--base-ms 100] [--exponent 2]
[--overload 2] [--reject-ms 5]`` serves HTTP/1.0 on 127.0.0.1 (stdlib asyncio, one request per
connection) and prints ``ready`` once listening. Stop it with SIGTERM.

The model: with ``k`` requests in flight when a request arrives (itself included), and capacity
``N``:

* ``k <= overload * N``: the request is served after ``base * max(1, k / N) ** exponent``
  (computed once, at its arrival). Up to N requests in flight it takes ``base``; past N it gets
  slower faster than the load grows, so throughput (``k / latency``) peaks at exactly ``k = N``
  and falls as ``N / k`` past it with the default exponent 2 (with 3 it falls as ``(N/k)**2``).
* ``k > overload * N``: the request is refused with ``503`` after ``reject-ms`` (it does not
  count as in flight once refused), so no more than ``overload * N`` are ever served at once.

Endpoints (all GET; JSON replies):

* ``/work?p=<page>&a=<attempt>``: one unit of work, ``200 ok`` or ``503 busy``.
* ``/now``: the current in-flight count, totals (requests, ok, errors) and the model's settings.
* ``/records?since=T``: every request that arrived at or after ``T`` (``time.time()``) and has
  finished, as ``[arrival, end, status, in_flight_at_arrival]``.
* ``/timeline?since=T``: ``[t, in_flight]`` sampled every 100 ms.
* ``/config?capacity=&base_ms=&exponent=&overload=``: change the model (any subset), reply like
  ``/now``.

The driver side (``Downstream``) starts the process and calls these; ``http_get`` is the
minimal client both it and the page processor use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}


class DownstreamError(Exception):
    """The downstream refused or failed a request."""


async def http_get(host: str, port: int, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """``GET path`` over one HTTP/1.0 connection: (status, body)."""

    async def go() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or not status_line[1].isdigit():
            raise DownstreamError(f"malformed reply from {host}:{port}{path}: {raw[:80]!r}")
        return int(status_line[1]), body

    return await asyncio.wait_for(go(), timeout)


@dataclass
class Model:
    """The downstream's capacity model (see the module docstring)."""

    capacity: int = 8
    base_ms: float = 100.0
    exponent: float = 2.0
    overload: float = 2.0
    reject_ms: float = 5.0

    def latency_s(self, in_flight: int) -> float:
        return float(self.base_ms / 1000 * max(1.0, in_flight / self.capacity) ** self.exponent)

    def admits(self, in_flight: int) -> bool:
        return in_flight <= self.overload * self.capacity


class Server:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.in_flight = 0
        self.requests = self.ok = self.errors = 0
        self.records: list[tuple[float, float, int, int]] = []
        self.timeline: list[tuple[float, int]] = []

    def now(self) -> dict[str, Any]:
        return {
            "t": time.time(),
            "in_flight": self.in_flight,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "model": asdict(self.model),
        }

    async def work(self) -> int:
        arrival = time.time()
        self.requests += 1
        self.in_flight += 1
        k = self.in_flight
        try:
            if not self.model.admits(k):
                self.in_flight -= 1
                await asyncio.sleep(self.model.reject_ms / 1000)
                self.errors += 1
                self.records.append((arrival, time.time(), 503, k))
                return 503
            await asyncio.sleep(self.model.latency_s(k))
            self.in_flight -= 1
        except BaseException:
            self.in_flight -= 1
            raise
        self.ok += 1
        self.records.append((arrival, time.time(), 200, k))
        return 200

    def configure(self, q: dict[str, list[str]]) -> None:
        for name, conv in (
            ("capacity", int),
            ("base_ms", float),
            ("exponent", float),
            ("overload", float),
            ("reject_ms", float),
        ):
            if name in q:
                setattr(self.model, name, conv(q[name][0]))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, body = 400, b"{}"
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            while True:  # skip the headers
                h = await asyncio.wait_for(reader.readline(), 10)
                if h in (b"\r\n", b"\n", b""):
                    break
            parts = line.decode("latin-1").split()
            if len(parts) >= 2:
                url = urlsplit(parts[1])
                q = parse_qs(url.query)
                since = float(q["since"][0]) if "since" in q else 0.0
                if url.path == "/work":
                    status = await self.work()
                    body = b'"ok"' if status == 200 else b'"busy"'
                elif url.path == "/now":
                    status, body = 200, json.dumps(self.now()).encode()
                elif url.path == "/records":
                    rows = [r for r in self.records if r[0] >= since]
                    status, body = 200, json.dumps(rows).encode()
                elif url.path == "/timeline":
                    pts = [p for p in self.timeline if p[0] >= since]
                    status, body = 200, json.dumps(pts).encode()
                elif url.path == "/config":
                    self.configure(q)
                    status, body = 200, json.dumps(self.now()).encode()
                else:
                    status, body = 404, b'"unknown path"'
            head = (
                f"HTTP/1.0 {status} {_REASONS.get(status, '')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (OSError, asyncio.TimeoutError, ValueError):
            pass
        finally:
            writer.close()

    async def sample(self) -> None:
        while True:
            self.timeline.append((time.time(), self.in_flight))
            await asyncio.sleep(0.1)


async def _serve(opts: argparse.Namespace) -> None:
    server = Server(
        Model(
            capacity=opts.capacity,
            base_ms=opts.base_ms,
            exponent=opts.exponent,
            overload=opts.overload,
            reject_ms=opts.reject_ms,
        )
    )
    srv = await asyncio.start_server(server.handle, "127.0.0.1", opts.port, backlog=1024)
    sampler = asyncio.ensure_future(server.sample())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    async with srv:
        await stop.wait()
    sampler.cancel()


class Downstream:
    """The driver's side: ``python -m bench._downstream`` as a child process, and its API."""

    def __init__(self, port: int, model: Model) -> None:
        self.host, self.port, self.model = "127.0.0.1", port, model
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        m = self.model
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._downstream",
            "--port",
            str(self.port),
            "--capacity",
            str(m.capacity),
            "--base-ms",
            str(m.base_ms),
            "--exponent",
            str(m.exponent),
            "--overload",
            str(m.overload),
            "--reject-ms",
            str(m.reject_ms),
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"the downstream did not start: {line!r}")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def _json(self, path: str) -> Any:
        status, body = await http_get(self.host, self.port, path, timeout=30)
        if status != 200:
            raise DownstreamError(f"{path}: HTTP {status}")
        return json.loads(body)

    async def now(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._json("/now")
        return out

    async def configure(self, **values: float) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in values.items())
        out: dict[str, Any] = await self._json(f"/config?{query}")
        return out

    async def records(self, since: float) -> list[tuple[float, float, int, int]]:
        rows = await self._json(f"/records?since={since!r}")
        return [(float(a), float(e), int(s), int(k)) for a, e, s, k in rows]

    async def timeline(self, since: float) -> list[tuple[float, int]]:
        return [(float(t), int(k)) for t, k in await self._json(f"/timeline?since={since!r}")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--capacity", type=int, default=8, help="N: requests served at base latency")
    ap.add_argument("--base-ms", type=float, default=100.0, help="latency up to N in flight")
    ap.add_argument(
        "--exponent",
        type=float,
        default=2.0,
        help="latency = base * (in_flight / N) ** exponent past N",
    )
    ap.add_argument(
        "--overload",
        type=float,
        default=2.0,
        help="503 for a request arriving with more than overload * N in flight",
    )
    ap.add_argument("--reject-ms", type=float, default=5.0, help="how long a 503 takes")
    asyncio.run(_serve(ap.parse_args()))


if __name__ == "__main__":
    main()
