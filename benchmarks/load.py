"""Load test of `synthscan serve` on loopback: N concurrent clients for a bounded time.

Starts a server (a fresh SQLite history in a temporary folder) on 127.0.0.1, or uses --url
(which must be a loopback address), then runs N clients that each post one image at a time to
/v1/scan with rescan=true, so every request is scored (not answered from the history). Prints
throughput, p50/p95/p99 latency, status-code counts, dropped connections, and the server's RSS
at the start and end and its growth between the first and last 10 s. Then, for the ratio, times
`Scanner.scan_paths` (what `synthscan scan` runs) on the same images in this process.

    python benchmarks/load.py [--clients 50] [--seconds 60] [--images examples] [--model synthscan-default] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ipaddress
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, workdir: Path, queue_size: int, threads: int | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-c", "from synthscan.cli.main import app; app()", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--model", model, "--database", f"sqlite:///{workdir / 'history.db'}",
               "--queue-size", str(queue_size)]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(workdir / "server.log", "w"), env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"the server exited: see {workdir / 'server.log'}")
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready in 300 s")


async def run_clients(url: str, images: list[tuple[str, bytes]], clients: int, seconds: float, pid: int | None):
    latencies: list[float] = []
    statuses: collections.Counter = collections.Counter()
    dropped = collections.Counter()
    rss_samples: list[tuple[float, float]] = []
    start = time.monotonic()
    stop = start + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(i: int, http: httpx.AsyncClient) -> None:
        n = i
        while time.monotonic() < stop:
            name, data = images[n % len(images)]
            n += clients
            t0 = time.monotonic()
            try:
                r = await http.post("/v1/scan", params={"rescan": "true"}, files=[("files", (name, data, "image/jpeg"))])
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    latencies.append(time.monotonic() - t0)
            except httpx.HTTPError as exc:
                dropped[type(exc).__name__] += 1

    async def sample_rss() -> None:
        while pid and time.monotonic() < stop:
            rss_samples.append((time.monotonic() - start, rss_mib(pid)))
            await asyncio.sleep(1)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as http:
        await asyncio.gather(sample_rss(), *(client(i, http) for i in range(clients)))
    return latencies, statuses, dropped, rss_samples, time.monotonic() - start


def cli_throughput(model: str, paths: list[str], seconds: float) -> float:
    """Images/s of `Scanner.scan_paths` (the code `synthscan scan` runs), model load excluded."""
    from synthscan.scanning import Scanner

    scanner = Scanner(model)
    list(scanner.scan_paths(paths[:2]))  # warm-up
    done, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        done += sum(r.ok for r in scanner.scan_paths(paths))
    return done / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--images", type=Path, default=Path(__file__).resolve().parent.parent / "examples")
    parser.add_argument("--model", default="synthscan-default")
    parser.add_argument("--url", help="an already running server on 127.0.0.1 (RSS is then not measured)")
    parser.add_argument("--threads", type=int, help="torch threads for the server and the CLI baseline alike "
                        "(default: torch's own choice); 1 avoids thread thrashing on a busy machine")
    parser.add_argument("--cli-seconds", type=float, default=20, help="how long to time the CLI baseline (0: skip)")
    args = parser.parse_args()

    paths = sorted(str(p) for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images under {args.images}")
    images = [(Path(p).name, Path(p).read_bytes()) for p in paths]
    print(f"{len(images)} images from {args.images}; {args.clients} clients for {args.seconds:g} s; "
          f"{os.cpu_count()} CPU cores; torch threads: {args.threads or 'default'}")

    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.url:
            host = urlparse(args.url).hostname or ""
            if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
                raise SystemExit("--url must be a loopback address: this benchmark never loads a remote server")
            url, pid = args.url, None
        else:
            server, url = start_server(args.model, Path(tmp), max(64, 2 * args.clients), args.threads)
            pid = server.pid
        try:
            rss_start = rss_mib(pid) if pid else None
            latencies, statuses, dropped, rss, elapsed = asyncio.run(
                run_clients(url, images, args.clients, args.seconds, pid))
            rss_end = rss_mib(pid) if pid else None
        finally:
            if server:
                server.terminate()
                server.wait(30)
                errors = [line for line in (Path(tmp) / "server.log").read_text().splitlines()
                          if "Error" in line or "error" in line.split(":", 1)[0].lower()]
                if errors:
                    print("server log errors (last 10):", *errors[-10:], sep="\n  ")

    ok = statuses.get(200, 0)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    print(f"requests: {sum(statuses.values())} answered, {sum(dropped.values())} dropped {dict(dropped) or ''}")
    print(f"status codes: {dict(sorted(statuses.items()))}; 5xx: {sum(v for k, v in statuses.items() if k >= 500)}")
    print(f"throughput: {ok / elapsed:.2f} images/s ({ok} scanned in {elapsed:.1f} s)")
    print(f"latency (s): p50 {q[49]:.2f}  p95 {q[94]:.2f}  p99 {q[98]:.2f}  max {max(latencies, default=float('nan')):.2f}")
    if rss:
        first = [m for t, m in rss if t <= 10]
        last = [m for t, m in rss if t >= rss[-1][0] - 10]
        growth = 100 * (statistics.mean(last) / statistics.mean(first) - 1)
        print(f"server RSS (MiB): start {rss_start:.0f}, end {rss_end:.0f}; "
              f"first 10 s mean {statistics.mean(first):.0f} -> last 10 s mean {statistics.mean(last):.0f} ({growth:+.1f}%)")
    if args.cli_seconds > 0:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        cli = cli_throughput(args.model, paths, args.cli_seconds)
        print(f"synthscan scan (Scanner.scan_paths, same images, {args.cli_seconds:g} s): {cli:.2f} images/s; "
              f"service/CLI = {ok / elapsed / cli:.0%}")


if __name__ == "__main__":
    main()
