"""Online serving: latency and throughput of `ml-platform serve`, hot swaps under load, parity with batch scores.

    python -m benchmarks serving [--project PATH] [--requests N] [--seconds S] [--parity-rows N] [--swaps N]
                                 [--bursts N]

Serves a project whose model is deployed and batch-scored (--project; without it, a fresh `ml-platform demo
--score-days 60` project is built first, then a second version promoted by a hyper-parameter change and the demo
again, so that the hot swaps have two versions to alternate) from a child `ml-platform serve` on 127.0.0.1, and drives it with an
asyncio client of the standard library (HTTP/1.1 keep-alive, one connection per concurrent client); all traffic
stays on 127.0.0.1, and each measurement is bounded by a request count and a time limit. Measures:
- single-entity requests at concurrency 1, 8 and 32, features precomputed (rows the batch scored);
- single-entity requests with `"features": "on_demand"`, reported apart: the server computes a day's features
  on demand once per served state (data version) and keeps them, so the first request of a day pays the day's
  computation and later requests of that day read what it computed. Measured: first requests of new days
  (concurrency 1); a burst of 8 concurrent first requests for one new day (they wait for one computation, which
  /health's `computed_on_demand` counts), and with --bursts N, N such bursts on N new days pooled (one burst is 8
  latencies: its p99 is its slowest request); requests of days already computed (concurrency 1 and 8);
- 1,000-entity requests at concurrency 1;
- hot swaps: rollbacks between the two latest promoted versions, each appended to the promotion log while 8
  clients keep requesting; counts failed requests and checks that each swap reached the answers;
- parity: up to --parity-rows batch-scored rows served again, each score compared with == to the stored one.
Prints the figures; it does not write RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import BIN, copy_project, edit_yaml, project_environment, require_success, run_child

MODEL = "flight_delay"
HOST = "127.0.0.1"


class Connection:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        raw = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(port: int, bodies: list[dict], concurrency: int, seconds: float, stop: dict | None = None) -> dict:
    """Send the bodies (in turn) from `concurrency` clients until all are sent, time is up or stop["flag"]."""
    latencies, failures, answers = [], [], []
    queue = list(reversed(bodies))
    stop = stop if stop is not None else {"flag": False}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        connection = Connection(port)
        try:
            while queue and time.perf_counter() < deadline and not stop["flag"]:
                body = queue.pop()
                started = time.perf_counter()
                status, answer = await connection.post(f"/v1/models/{MODEL}/predict", body)
                latencies.append(time.perf_counter() - started)
                (answers if status == 200 else failures).append(answer)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"requests": len(latencies), "failed": len(failures), "seconds": elapsed,
            "per_second": len(latencies) / elapsed, "p50_ms": _percentile(ordered, 0.50),
            "p95_ms": _percentile(ordered, 0.95), "p99_ms": _percentile(ordered, 0.99), "answers": answers,
            "failures": failures[:3], "latencies": latencies}


def _percentile(ordered: list[float], share: float) -> float:
    """The share's percentile of sorted latencies in seconds, in milliseconds."""
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else float("nan")


def _stored_rows(project: Path, limit: int) -> list[tuple]:
    """Batch-scored rows (flight_id, score) of the live champion, in a fixed pseudo-random order."""
    from ml_platform.project import Project
    from ml_platform.storage import registry
    from ml_platform.storage.warehouse import open_warehouse

    with open_warehouse(Project.at(project).storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, MODEL).model_version
        return connection.execute(f"SELECT flight_id, score FROM predictions.{MODEL}__latest WHERE model_version = ? "
                                  f"ORDER BY hash(flight_id) LIMIT {int(limit)}", [champion]).fetchall()


def _promoted(project: Path) -> list[str]:
    from ml_platform.project import Project
    from ml_platform.storage import registry
    from ml_platform.storage.warehouse import open_warehouse

    with open_warehouse(Project.at(project).storage.warehouse) as connection:
        return list(dict.fromkeys(entry.model_version for entry in registry.promotions.log(connection, MODEL)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ml-platform serve exited with {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("ml-platform serve did not start")


def _line(name: str, result: dict) -> str:
    return (f"{name:<42} {result['requests']:>6} req {result['failed']:>3} failed {result['per_second']:>8.1f}/s "
            f"p50 {result['p50_ms']:>7.1f} ms  p95 {result['p95_ms']:>7.1f} ms  p99 {result['p99_ms']:>7.1f} ms")


async def _hot_swaps(project: Path, port: int, swaps: int, seconds: float) -> tuple[dict, list[str], list[str]]:
    """Rollbacks alternating between the two latest promoted versions while 8 clients request."""
    from ml_platform.project import Project
    from ml_platform.storage import registry
    from ml_platform.storage.warehouse import open_warehouse

    with open_warehouse(Project.at(project).storage.warehouse) as connection:
        live = registry.promotions.champion(connection, MODEL).model_version
    versions = [live, *[version for version in _promoted(project) if version != live][-1:]]
    if len(versions) < 2:
        return {}, [], [f"hot swaps skipped: {MODEL} has {len(versions)} promoted version(s); two are needed"]
    rows = _stored_rows(project, 200)
    bodies = [{"keys": {"flight_id": key}} for key, _ in rows] * 10_000
    stop = {"flag": False}
    targets = [versions[(position + 1) % 2] for position in range(swaps)]  # first: the one not live
    notes, swapped = [], []

    async def swapper() -> None:
        for target in targets:
            await asyncio.sleep(1.0)
            child = await asyncio.to_thread(run_child, [str(BIN / "ml-platform"), "--project", str(project),
                                                        "rollback", MODEL, "--to", target, "--reason", "benchmark"],
                                            project_environment(project))
            if child.returncode != 0:
                notes.append(f"rollback to {target} failed: {child.stderr[-500:]}")
            swapped.append(target)
        await asyncio.sleep(2.0)
        stop["flag"] = True

    async def bounded_load() -> dict:
        return await _load(port, bodies, 8, seconds, stop)

    load_task = asyncio.create_task(bounded_load())
    swap_task = asyncio.create_task(swapper())
    await swap_task
    result = await load_task
    return result, swapped, notes


def _health(port: int) -> dict:
    with socket.create_connection((HOST, port), timeout=30) as connection:
        connection.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := connection.recv(65536):
            raw += chunk
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


def _rows_by_day(project: Path, per_day: int) -> dict:
    """Up to `per_day` rows (flight_id) of each batch-scored day of the live champion, in a fixed order."""
    from ml_platform.project import Project
    from ml_platform.storage import registry
    from ml_platform.storage.warehouse import open_warehouse

    with open_warehouse(Project.at(project).storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, MODEL).model_version
        rows = connection.execute(f"SELECT CAST(partition_date AS DATE), flight_id FROM predictions.{MODEL}__latest "
                                  f"WHERE model_version = ? QUALIFY row_number() OVER (PARTITION BY partition_date "
                                  f"ORDER BY hash(flight_id)) <= {int(per_day)} ORDER BY 1, hash(flight_id)",
                                  [champion]).fetchall()
    days: dict = {}
    for day, key in rows:
        days.setdefault(day, []).append(key)
    return days


def _entity_rows_by_day(project: Path, per_day: int, before: object, days: int) -> dict:
    """Up to `per_day` rows (flight_id) of each of the `days` last days of the entity before `before` (days the
    batch did not score: their features are computed on demand all the same), in a fixed order."""
    from ml_platform.project import Project
    from ml_platform.storage.warehouse import open_warehouse

    with open_warehouse(Project.at(project).storage.warehouse) as connection:
        rows = connection.execute(
            f"SELECT CAST(partition_date AS DATE) AS day, flight_id FROM source.flights WHERE partition_date >= ? - "
            f"INTERVAL {int(days)} DAY AND partition_date < ? AND origin IN ('EWR', 'JFK', 'LGA') QUALIFY "
            f"row_number() OVER (PARTITION BY partition_date ORDER BY hash(flight_id)) <= {int(per_day)} "
            f"ORDER BY 1, hash(flight_id)", [before, before]).fetchall()
    result: dict = {}
    for day, key in rows:
        result.setdefault(day, []).append(key)
    return result


def _on_demand(port: int, project: Path, requests: int, seconds: float, bursts: int) -> None:
    """On-demand features: first requests of new days, bursts of 8 first requests on new days, then days already
    computed."""
    days = _rows_by_day(project, 50)
    if len(days) < 2:
        print(f"on demand skipped: {len(days)} batch-scored day(s); two are needed")
        return
    ordered = sorted(days)
    burst_day, first_days = ordered[-1], ordered[:-1][: max(3, min(10, requests // 20))]
    burst_days = {burst_day: days[burst_day], **_entity_rows_by_day(project, 8, ordered[0], bursts - 1)}

    def body(key: str) -> dict:
        return {"keys": {"flight_id": key}, "features": "on_demand"}

    before = _health(port)["computed_on_demand"]
    result = asyncio.run(_load(port, [body(days[day][0]) for day in first_days], 1, seconds))
    print(_line("on demand, first of a day, conc. 1", result))
    burst = asyncio.run(_load(port, [body(key) for key in days[burst_day][:8]], 8, seconds))
    print(_line("on demand, 8 firsts of one day, conc. 8", burst))
    if len(burst_days) > 1:
        latencies, failed = [], 0
        for day, keys in sorted(burst_days.items()):
            if day == burst_day:
                continue
            result = asyncio.run(_load(port, [body(key) for key in keys[:8]], 8, seconds))
            latencies += result["latencies"]
            failed += result["failed"]
        latencies = sorted([*latencies, *burst["latencies"]])
        print(f"{'on demand, 8 firsts of a day, ' + str(len(burst_days)) + ' days, conc. 8':<42} "
              f"{len(latencies):>6} req {failed + burst['failed']:>3} failed "
              f"p50 {_percentile(latencies, 0.5):>7.1f} ms  p95 {_percentile(latencies, 0.95):>7.1f} ms  "
              f"p99 {_percentile(latencies, 0.99):>7.1f} ms  max {latencies[-1] * 1000:>7.1f} ms")
    computed = _health(port)["computed_on_demand"] - before
    print(f"on demand: {len(first_days) + len(burst_days)} new days requested, {computed} feature-set days "
          f"computed (the server's count; at most one computation per feature set and day)")
    computed_days = [*first_days, burst_day]
    cached = [body(key) for position in range(50) for day in computed_days
              if position < len(days[day]) for key in [days[day][position]]][:max(20, requests // 2)]
    for concurrency in (1, 8):
        result = asyncio.run(_load(port, cached, concurrency, seconds))
        print(_line(f"on demand, day computed, conc. {concurrency}", result))


def serve_and_measure(project: Path, requests: int, seconds: float, parity_rows: int, swaps: int,
                      bursts: int = 1) -> None:
    """Start the server on the project, run every measurement, print the figures."""
    port = _free_port()
    process = subprocess.Popen([str(BIN / "ml-platform"), "--project", str(project), "serve", "--port", str(port)],
                               env=project_environment(project), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        started = time.perf_counter()
        _wait_for(port, process)
        print(f"server ready in {time.perf_counter() - started:.1f} s on {HOST}:{port}")
        rows = _stored_rows(project, max(parity_rows, requests))
        if not rows:
            raise SystemExit(f"no batch-scored rows of {MODEL}'s live champion in {project}: score some days with it "
                             f"first (the measurements request rows it scored, and parity compares with them)")
        singles = [{"keys": {"flight_id": key}} for key, _ in rows]
        asyncio.run(_load(port, singles[:50], 4, 30))  # warm up
        for concurrency in (1, 8, 32):
            result = asyncio.run(_load(port, singles[:requests], concurrency, seconds))
            print(_line(f"single, precomputed, concurrency {concurrency}", result))
        _on_demand(port, project, requests, seconds, bursts)
        batches = [{"keys": [{"flight_id": key} for key, _ in rows[first:first + 1000]]}
                   for first in range(0, min(len(rows), 20_000) - 999, 1000)] or []
        if batches:
            result = asyncio.run(_load(port, batches * 3, 1, seconds))
            print(_line("1,000 entities per request, concurrency 1", result))
        parity = rows[:parity_rows]
        result = asyncio.run(_load(port, [{"keys": [{"flight_id": key} for key, _ in parity[first:first + 1000]]}
                                          for first in range(0, len(parity), 1000)], 1, 600))
        served = {item["keys"]["flight_id"]: item["score"] for answer in result["answers"]
                  for item in answer["predictions"]}
        differing = sum(1 for key, score in parity if served.get(key) != score)
        print(f"parity: {len(served):,} of {len(parity):,} batch-scored rows served, {differing:,} differ (==)")
        result, swapped, notes = asyncio.run(_hot_swaps(project, port, swaps, seconds=600))
        for note in notes:
            print(note)
        if result:
            versions = [answer["model_version"] for answer in result["answers"]]
            changes = sum(1 for position in range(1, len(versions)) if versions[position] != versions[position - 1])
            # 8 clients interleave: around a swap, an answer of the old version can follow one of the new
            print(_line(f"during {len(swapped)} hot swaps, concurrency 8", result))
            print(f"hot swaps: {len(swapped)} rollbacks appended, {changes} version changes seen in the answers, "
                  f"{result['failed']} failed requests")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _second_version(project: Path) -> None:
    """Promote a second version of the model: another learning rate, then `ml-platform demo --score-days 60`
    again (trained, gated, deployed and the days scored again by it). The gate's comparison with the champion is
    waived: whether the change earns its promotion is not what this benchmark measures."""
    def change(spec: dict) -> None:
        spec["algorithm"]["params"]["learning_rate"] = spec["algorithm"]["params"].get("learning_rate", 0.1) * 0.9
        spec["gate"]["min_gain_over_champion"] = None

    edit_yaml(project / "model_specs" / f"{MODEL}.yaml", change)
    print("promoting a second version (learning rate x 0.9, ml-platform demo --score-days 60)", file=sys.stderr)
    require_success(run_child([str(BIN / "ml-platform"), "--project", str(project), "demo", "--score-days", "60"],
                              project_environment(project)), "ml-platform demo (the second version)")
    if len(_promoted(project)) < 2:
        raise SystemExit(f"the second demo run promoted no new version of {MODEL} in {project}")


def main() -> None:
    """Parse the options, make or take a project, measure."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a project whose model is deployed and batch-scored")
    parser.add_argument("--requests", type=int, default=1000, help="single-entity requests per measurement")
    parser.add_argument("--seconds", type=float, default=30, help="time limit of each measurement")
    parser.add_argument("--parity-rows", type=int, default=10_000, help="batch-scored rows served again")
    parser.add_argument("--swaps", type=int, default=10, help="hot swaps under load")
    parser.add_argument("--bursts", type=int, default=1,
                        help="days of 8 concurrent first on-demand requests (the batch-scored last day, then days "
                             "before the batch-scored ones)")
    arguments = parser.parse_args()
    project = arguments.project
    if project is None:
        project = copy_project(Path(tempfile.mkdtemp(prefix="serving_benchmark_")) / "project")
        print(f"building the demo project in {project} (ml-platform demo --score-days 60)", file=sys.stderr)
        require_success(run_child([str(BIN / "ml-platform"), "--project", str(project), "demo", "--score-days", "60"],
                                  project_environment(project)), "ml-platform demo")
        if arguments.swaps:
            _second_version(project)
    serve_and_measure(project.resolve(), arguments.requests, arguments.seconds, arguments.parity_rows,
                      arguments.swaps, arguments.bursts)


if __name__ == "__main__":
    main()
