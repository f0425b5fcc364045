"""How the operator scales with the number of InferenceServices (issue 13), against a real
API server.

    python -m bench.scale --count 100 --count 1000 [--tick-seconds 5] [--timeout 300]
                          [--idle-seconds 60] [--operator-arg=--api-concurrency=32]
                          [--apiserver-profile SECONDS]
    python -m bench.scale --ceiling [6000]

--apiserver-profile also takes the API server's CPU profile (Go pprof, the server started
with --profiling) over the first SECONDS of creation and prints `go tool pprof -top` of it,
by own and by cumulative time: where the test bed's busiest process spends its time.

--ceiling measures the test bed instead, on the same control plane and proxy with no
operator: ConfigMap writes (POST creates, then server-side apply PATCHes that create) with
the operator's --api-concurrency default in flight, through the proxy with the operator's
token and directly over TLS; writes/s, and the most objects/s any operator could reach at
6 writes per object (kopf's 2 besides).

For each N: a fresh real control plane (etcd + kube-apiserver, and only the
serviceaccount and namespace controllers: no Deployment controller, scheduler or kubelet,
so no ReplicaSet or Pod ever exists), the tritonop CRD, one namespace, the recording fault
proxy (tests/support/fault_proxy.py) and the real operator process (`python -m tritonop
run`) through it with a cluster-admin ServiceAccount token, Prometheus and Triton at a
closed local port. The script creates N minimal CPU InferenceServices (`service` traffic
provider) straight at the API server, 32 requests in flight, then waits.

Then every object gets an in-place change (autoscaling.maxReplicas 1 -> 3: no new revision;
an HPA appears and the Deployment's replicas are handed over to it), 32 patches in flight:
updated objects per second (first patch -> last status write observing it), per-object
latency (its patch -> its last status write by then) and the operator's requests per object.

Converged: the operator has written status for the object's current generation
(status.observedGeneration == metadata.generation) and has written its entry Service (the
last child a first reconcile writes). With no pods the phase stays Pending: Ready is never
reached here, so this measures the operator's own work, not a rollout. Per-object latency:
from the client sending the create to the later of the operator's first successful status
write and entry Service write, as the proxy recorded them (request arrival times).

Requests per object at creation are the operator's (User-Agent tritonop/, its own client)
and kopf's (kopf/) requests from the operator start until all N converged, divided by N;
the minimum is one write per child the operator created and one status write. Idle
requests are counted over --idle-seconds once everything converged (after one tick's
settling). Peak RSS is the operator process's VmHWM. Errors: every non-2xx answer except
GET 404s (counted separately), plus the operator log's retried passes ("pass failed", controller/loops.py) and
HTTP timeouts. See docs/benchmarks.md for recorded figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import math
import re
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.support.control_plane import ControlPlane
from tests.support.fault_proxy import FaultProxy, Recorded
from tests.support.operator_process import OperatorProcess, free_port
from tests.support.real_cluster import ADMIN_ACCOUNT, prepare
from tritonop.children.labels import ISVC_LABEL
from tritonop.config import OperatorConfig

NS = "bench"
ISVCS = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices"
CLOSED = "http://127.0.0.1:9"  # nothing listens: Prometheus and Triton fail fast
CONTROLLERS = ("serviceaccount-controller", "namespace-controller")  # default ServiceAccounts only
OK = range(200, 300)
MINIMUM_WRITES = 6  # per object: an apply per child (5) and a status write
KOPF_WRITES = 2  # per object, kopf's own (measured: the "kopf requests per object" column)


def isvc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"name": "m", "storageUri": "s3://models/m"},
            "triton": {"gpus": 0},
            "traffic": {"provider": "service"},
        },
    }


@dataclasses.dataclass
class Row:
    count: int
    converged: int = 0
    total_s: float | None = None  # first create -> last converged
    create_rate: float = 0.0  # client creates per second
    converge_rate: float = 0.0  # converged objects per second (first create -> last converged)
    p50_s: float | None = None
    p99_s: float | None = None
    by_verb: dict[str, float] = dataclasses.field(default_factory=dict)  # operator client, per object
    kopf_per_object: float = 0.0
    minimum: float = 0.0
    idle_per_object_min: float | None = None
    idle_by_verb: dict[str, float] = dataclasses.field(default_factory=dict)
    rss_mb: float | None = None
    apiserver_profile: str = ""  # `go tool pprof -top` of the API server during creation
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    retries: int = 0
    timeouts: int = 0
    # The in-place update (autoscaling.maxReplicas 1 -> 3 on every object, after the idle window).
    updated: int = 0
    update_rate: float = 0.0  # updated objects per second (first patch sent -> last updated)
    update_p50_s: float | None = None
    update_p99_s: float | None = None
    update_by_verb: dict[str, float] = dataclasses.field(default_factory=dict)  # operator client, per object


def agent(r: Recorded) -> str:
    ua = r.headers.get("User-Agent", "")
    return "tritonop" if ua.startswith("tritonop/") else "kopf" if ua.startswith("kopf/") else "other"


_OBJ = re.compile(r"/namespaces/[^/]+/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")


def addressed(r: Recorded) -> tuple[str, str | None, str | None]:
    """(plural, name, subresource) of a namespaced request; a POST's name from its body."""
    m = _OBJ.search(r.path)
    if not m:
        return ("", None, None)
    name = m["name"]
    if name is None and r.method == "POST" and isinstance(r.body, dict):
        name = (r.body.get("metadata") or {}).get("name")
    return (m["plural"], name, m["sub"])


def verb(r: Recorded) -> str:
    _, name, _ = addressed(r)
    if r.method == "GET":
        if r.is_watch:
            return "WATCH"
        if name is None:
            return "LIST"
        return "GET 404" if r.status == 404 else "GET"
    return r.method


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def vm_hwm_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def admin_tls(cp: ControlPlane) -> ssl.SSLContext:
    assert cp.workdir is not None
    pki = cp.workdir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


@contextlib.contextmanager
def cluster(workdir: Path, *, profiling: bool = False) -> Iterator[tuple[ControlPlane, FaultProxy, Path, str]]:
    # Two Services per object: the test bed's /24 service range holds 125 objects; a /16
    # (given after it, so it wins) holds 32,000, and still contains the `kubernetes` Service IP.
    cp = ControlPlane(
        controllers=True,
        scheduler=False,
        controller_names=CONTROLLERS,
        extra_apiserver_args=("--service-cluster-ip-range=10.0.0.0/16", f"--profiling={str(profiling).lower()}"),
    )
    try:
        cp.start()
        prepare(cp, [NS])
        with FaultProxy(cp) as proxy:
            token = cp.kubectl("create", "token", ADMIN_ACCOUNT, "-n", "kube-system", "--duration=2h").stdout.strip()
            yield cp, proxy, proxy.kubeconfig(workdir / "kubeconfig", token=token), token
    finally:
        cp.stop()


async def measure(
    count: int,
    *,
    tick: float,
    timeout: float,
    idle_s: float,
    in_flight: int,
    operator_args: Sequence[str],
    workdir: Path,
    apiserver_profile_s: float = 0,
) -> Row:
    row = Row(count)
    with cluster(workdir, profiling=apiserver_profile_s > 0) as (cp, proxy, kubeconfig, _):
        log = workdir / f"operator-{count}.log"
        args = ["-n", NS, "--tick-seconds", str(tick), "--metrics-port", str(free_port())]
        args += ["--prometheus-url", CLOSED, "--triton-url-template", CLOSED, *operator_args]
        operator = OperatorProcess(kubeconfig, *args, log=log).start()
        try:
            async with httpx.AsyncClient(base_url=cp.url, verify=admin_tls(cp), timeout=60) as client:
                await _wait_watching(proxy, operator)
                start_mark = proxy.mark()
                profile = None
                if apiserver_profile_s > 0:
                    profile = asyncio.create_task(_apiserver_profile(client, apiserver_profile_s, workdir, count))
                sent = await _create(client, count, in_flight, row)
                done_at = await _wait_converged(client, proxy, sent, row, timeout)
                if profile is not None:
                    row.apiserver_profile = await profile
                creation = [r for r in proxy.since(start_mark) if done_at is None or r.at <= done_at]
                _count_creation(row, creation, count)
                if done_at is not None and idle_s > 0:
                    await asyncio.sleep(tick + 1)
                    idle_mark = proxy.mark()
                    await asyncio.sleep(idle_s)
                    idle = [r for r in proxy.since(idle_mark) if agent(r) != "other"]
                    per = count * idle_s / 60
                    row.idle_per_object_min = len(idle) / per
                    verbs = collections.Counter(verb(r) for r in idle)
                    row.idle_by_verb = {v: n / per for v, n in sorted(verbs.items())}
                if done_at is not None:
                    update_mark = proxy.mark()
                    patched = await _update(client, sorted(sent), in_flight)
                    updated_at = await _wait_updated(client, proxy, update_mark, patched, row, timeout)
                    during = [r for r in proxy.since(update_mark) if updated_at is None or r.at <= updated_at]
                    verbs = collections.Counter(verb(r) for r in during if agent(r) == "tritonop")
                    row.update_by_verb = {v: n / count for v, n in sorted(verbs.items())}
                errors = collections.Counter(
                    f"{agent(r)} {r.method} {r.status}"
                    for r in proxy.since(start_mark)
                    if agent(r) != "other" and r.status not in OK and not (r.method == "GET" and r.status == 404)
                )
                row.errors = dict(errors)
            assert operator.proc is not None
            row.rss_mb = vm_hwm_mb(operator.proc.pid)
            with open(workdir / f"requests-{count}.jsonl", "w") as out:  # for a closer look
                for r in proxy.since(0):
                    line = {"at": round(r.at, 4), "agent": agent(r), "verb": verb(r), "path": r.path}
                    out.write(json.dumps({**line, "status": r.status}) + "\n")
        finally:
            await operator.astop()
        text = operator.output.split("Signal SIGINT is received")[0]  # not what shutting down cancels
        row.retries = text.count("pass failed")  # controller/loops.py: each is retried
        row.timeouts = len(re.findall(r"(Read|Write|Connect|Pool)Timeout", text))
    return row


async def _apiserver_profile(client: httpx.AsyncClient, seconds: float, workdir: Path, count: int) -> str:
    """The API server's CPU profile over the first ``seconds`` of creation (Go's pprof, served
    with --profiling), summarised by `go tool pprof -top`: where its time goes."""
    answer = await client.get("/debug/pprof/profile", params={"seconds": int(seconds)}, timeout=seconds + 60)
    answer.raise_for_status()
    path = workdir / f"apiserver-cpu-{count}.pb.gz"
    path.write_bytes(answer.content)
    flat = await _pprof_top(path, "-nodecount=25")
    cumulative = await _pprof_top(path, "-cum", "-nodecount=40")
    return f"{flat}\n-- by cumulative time --\n{cumulative}"


async def _pprof_top(path: Path, *flags: str) -> str:
    pprof = await asyncio.create_subprocess_exec(
        "go",
        "tool",
        "pprof",
        "-top",
        *flags,
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await pprof.communicate()
    return out.decode()


async def _wait_watching(proxy: FaultProxy, operator: OperatorProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.is_watch and "inferenceservices" in r.path for r in proxy.since(0)):
            return
        if operator.proc is not None and operator.proc.poll() is not None:
            raise RuntimeError(f"the operator exited:\n{operator.output[-3000:]}")
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the operator did not watch InferenceServices within {timeout}s:\n{operator.output[-3000:]}")


async def _create(client: httpx.AsyncClient, count: int, in_flight: int, row: Row) -> dict[str, float]:
    """Create isvc-0 .. isvc-(count-1), `in_flight` at a time; when each create was sent."""
    sent: dict[str, float] = {}
    slots = asyncio.Semaphore(in_flight)
    width = len(str(count - 1))

    async def one(i: int) -> None:
        name = f"isvc-{i:0{width}d}"
        async with slots:
            sent[name] = time.monotonic()
            for attempt in range(5):
                response = await client.post(ISVCS, json=isvc(name))
                if response.status_code in OK:
                    return
                if attempt == 4 or (response.status_code < 500 and response.status_code != 429):
                    raise RuntimeError(f"create {name}: {response.status_code} {response.text[:300]}")
                await asyncio.sleep(1)

    first = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    row.create_rate = count / max(time.monotonic() - first, 1e-9)
    return sent


# The benchmark's own polls are LISTs of every object: served from the API server's watch
# cache (resourceVersion=0, not a quorum read of etcd), and less often the more objects there
# are; at 10,000 a LIST every 2 s took most of the API server's core from the operator.
# Latencies come from the proxy's request times, so the poll interval only delays the end.
FROM_CACHE = {"resourceVersion": "0"}


def poll_seconds(count: int) -> float:
    return max(2.0, count / 500)


# An in-place change: no new revision (autoscaling is not part of it), so the running
# revision's children change where they stand: an HPA appears (min 1, max 3) and the
# Deployment's replicas are handed over to it.
UPDATE = {"spec": {"autoscaling": {"minReplicas": 1, "maxReplicas": 3}}}


async def _update(client: httpx.AsyncClient, names: Sequence[str], in_flight: int) -> dict[str, tuple[float, int]]:
    """Merge-patch every object with UPDATE, ``in_flight`` at a time; name -> (when sent, new generation)."""
    patched: dict[str, tuple[float, int]] = {}
    slots = asyncio.Semaphore(in_flight)
    headers = {"Content-Type": "application/merge-patch+json"}

    async def one(name: str) -> None:
        async with slots:
            at = time.monotonic()
            response = await client.patch(f"{ISVCS}/{name}", content=json.dumps(UPDATE), headers=headers)
            if response.status_code not in OK:
                raise RuntimeError(f"update {name}: {response.status_code} {response.text[:300]}")
            patched[name] = (at, int(response.json()["metadata"]["generation"]))

    await asyncio.gather(*(one(n) for n in names))
    return patched


async def _wait_updated(
    client: httpx.AsyncClient,
    proxy: FaultProxy,
    mark: int,
    patched: dict[str, tuple[float, int]],
    row: Row,
    timeout: float,
) -> float | None:
    """Poll (every poll_seconds) until every object's status observed its new generation (written after
    its children, so its HPA exists); the monotonic time of the last such status write."""
    first = min(at for at, _ in patched.values())
    deadline = first + timeout
    scanned = mark
    written: dict[str, float] = {}
    while True:
        records = proxy.since(scanned)
        scanned += len(records)
        for r in records:
            plural, name, sub = addressed(r)
            ours = agent(r) == "tritonop" and r.status in OK and (plural, sub) == ("inferenceservices", "status")
            if ours and name in patched and r.at >= patched[name][0]:
                written[name] = r.at  # the last status write so far: the one observing the update
        listed = (await client.get(ISVCS, params=FROM_CACHE)).json().get("items") or []
        done = {
            o["metadata"]["name"]
            for o in listed
            if o["metadata"]["name"] in patched
            and (o.get("status") or {}).get("observedGeneration") == patched[o["metadata"]["name"]][1]
        }
        path = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
        hpas = (await client.get(path, params=FROM_CACHE)).json()
        scaled = {(h["metadata"].get("labels") or {}).get(ISVC_LABEL) for h in hpas.get("items") or []}
        row.updated = len(done & scaled)
        now = time.monotonic()
        print(f"  N={len(patched)}: {row.updated} updated after {now - first:.0f}s", file=sys.stderr, flush=True)
        if row.updated == len(patched) or now > deadline:
            break
        await asyncio.sleep(poll_seconds(len(patched)))
    latencies = [written[n] - patched[n][0] for n in done & scaled if n in written]
    row.update_p50_s, row.update_p99_s = percentile(latencies, 0.5), percentile(latencies, 0.99)
    if row.updated < len(patched):
        return None
    last = max(written.get(n, first) for n in patched)
    row.update_rate = len(patched) / max(last - first, 1e-9)
    return last


async def _wait_converged(
    client: httpx.AsyncClient, proxy: FaultProxy, sent: dict[str, float], row: Row, timeout: float
) -> float | None:
    """Poll (every poll_seconds) until every object converged; the monotonic time it did (None: timed out)."""
    first = min(sent.values())
    deadline = first + timeout
    scanned = 0
    status_at: dict[str, float] = {}
    entry_at: dict[str, float] = {}
    while True:
        records = proxy.since(scanned)
        scanned += len(records)
        for r in records:
            if agent(r) != "tritonop" or r.status not in OK or r.method not in ("PATCH", "POST", "PUT"):
                continue
            plural, name, sub = addressed(r)
            if name not in sent:
                continue
            if plural == "inferenceservices" and sub == "status":
                status_at.setdefault(name, r.at)
            elif plural == "services" and sub is None:
                entry_at.setdefault(name, r.at)
        listed = (await client.get(ISVCS, params=FROM_CACHE)).json().get("items") or []
        current = {
            o["metadata"]["name"]
            for o in listed
            if (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation")
        }
        path = f"/api/v1/namespaces/{NS}/services"
        services = (await client.get(path, params=FROM_CACHE)).json().get("items") or []
        entries = {s["metadata"]["name"] for s in services} & current
        row.converged = len(entries)
        now = time.monotonic()
        print(f"  N={len(sent)}: {row.converged} converged after {now - first:.0f}s", file=sys.stderr, flush=True)
        if row.converged == len(sent) or now > deadline:
            break
        await asyncio.sleep(poll_seconds(len(sent)))
    latencies = [max(status_at[n], entry_at[n]) - sent[n] for n in entries if n in status_at and n in entry_at]
    row.p50_s, row.p99_s = percentile(latencies, 0.5), percentile(latencies, 0.99)
    if row.converged < len(sent):
        return None
    done = max(max(status_at.get(n, 0), entry_at.get(n, 0)) for n in sent)
    row.total_s = done - first
    row.converge_rate = len(sent) / row.total_s
    return done


def _count_creation(row: Row, records: list[Recorded], count: int) -> None:
    ours = [r for r in records if agent(r) == "tritonop"]
    verbs = collections.Counter(verb(r) for r in ours)
    row.by_verb = {v: n / count for v, n in sorted(verbs.items())}
    row.kopf_per_object = sum(1 for r in records if agent(r) == "kopf") / count
    children = {
        (plural, name)
        for r in ours
        if r.status in OK and r.method in ("PATCH", "POST", "PUT")
        for plural, name, sub in [addressed(r)]
        if plural not in ("inferenceservices", "events") and sub is None
    }
    row.minimum = len(children) / count + 1  # one write per child, one status write


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}s"


def table(rows: Sequence[Row], tick: float) -> str:
    lines = [
        f"tick {tick:g}s; converged = status.observedGeneration == generation and the entry Service written",
        "| N | converged | all converged in | creates/s (client) | converged/s | latency p50 / p99 "
        "| operator requests per object at creation (min) | kopf requests per object "
        "| idle requests per object per minute | in-place update: updated, per s, p50 / p99, requests per object "
        "| peak RSS | errors | retries / timeouts |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        verbs = ", ".join(f"{v} {n:.1f}" for v, n in row.by_verb.items())
        total = sum(row.by_verb.values())
        idle = (
            "—"
            if row.idle_per_object_min is None
            else f"{row.idle_per_object_min:.1f} ("
            + ", ".join(f"{v} {n:.1f}" for v, n in row.idle_by_verb.items())
            + ")"
        )
        errors = ", ".join(f"{k}: {n}" for k, n in sorted(row.errors.items())) or "0"
        # Not all converged: the requests are those of the whole wait, and no minimum is known.
        minimum = f"min {row.minimum:.0f}" if row.total_s is not None else "until the timeout"
        update_verbs = ", ".join(f"{v} {n:.1f}" for v, n in row.update_by_verb.items())
        update = (
            "—"
            if not row.update_by_verb and not row.updated
            else f"{row.updated}, {row.update_rate:.1f}/s, {_s(row.update_p50_s)} / {_s(row.update_p99_s)}, "
            f"{sum(row.update_by_verb.values()):.1f}: {update_verbs}"
        )
        lines.append(
            f"| {row.count} | {row.converged} | {_s(row.total_s)} | {row.create_rate:.0f} | {row.converge_rate:.1f} "
            f"| {_s(row.p50_s)} / {_s(row.p99_s)} | {total:.1f}: {verbs} ({minimum}) "
            f"| {row.kopf_per_object:.1f} | {idle} | {update} | "
            f"{'—' if row.rss_mb is None else f'{row.rss_mb:.0f} MB'} | {errors} | {row.retries} / {row.timeouts} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- the test bed's ceiling


@dataclasses.dataclass
class CeilingRow:
    path: str  # "proxy" (the operator's path, its token) or "direct" (TLS, admin certificate)
    write: str  # "create" (POST) or "apply" (server-side apply PATCH creating the object)
    writes: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.writes / self.seconds


def configmap(name: str) -> dict[str, Any]:
    # About the size of a small child (a Service): labels, an ownerless body, a little data.
    labels = {"app.kubernetes.io/managed-by": "bench", "serving.tritonop.dev/inferenceservice": name}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": {"key": "x" * 200},
    }


async def _writes(
    base_url: str,
    ssl_context: ssl.SSLContext | None,
    token: str | None,
    write: str,
    prefix: str,
    count: int,
    in_flight: int,
) -> tuple[float, int]:
    """``count`` ConfigMap writes, ``in_flight`` at a time over as many connections (as the
    operator's client: aiohttp, its transport (kube/transport.py), a connection per slot);
    (seconds, errors)."""
    headers = {"User-Agent": "bench-ceiling/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    collection = f"{base_url}/api/v1/namespaces/{NS}/configmaps"
    slots = asyncio.Semaphore(in_flight)
    errors = 0
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else False, limit=in_flight)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(i: int) -> None:
            nonlocal errors
            name = f"{prefix}-{i}"
            async with slots:
                if write == "create":
                    request = session.post(collection, json=configmap(name))
                else:
                    request = session.patch(
                        f"{collection}/{name}",
                        params={"fieldManager": "bench", "force": "true"},
                        data=json.dumps(configmap(name)),
                        headers={"Content-Type": "application/apply-patch+yaml"},
                    )
                async with request as response:
                    await response.read()
                    if response.status not in OK:
                        errors += 1

        start = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.monotonic() - start, errors


async def ceiling(count: int, in_flight: int, workdir: Path) -> list[CeilingRow]:
    """On the benchmark's own control plane and proxy, with no operator running: how many
    plain writes per second the test bed accepts, through the proxy and directly."""
    rows = []
    with cluster(workdir) as (cp, proxy, _, token):
        for write in ("create", "apply"):
            for path in ("proxy", "direct"):
                base, context, bearer = (proxy.url, None, token) if path == "proxy" else (cp.url, admin_tls(cp), None)
                prefix = f"{write}-{path}"
                print(f"ceiling: {count} {write} writes via {path}, {in_flight} in flight", file=sys.stderr, flush=True)
                seconds, errors = await _writes(base, context, bearer, write, prefix, count, in_flight)
                rows.append(CeilingRow(path, write, count, seconds, errors))
                print(f"  {count / seconds:.0f} writes/s, {errors} errors", file=sys.stderr, flush=True)
    return rows


def ceiling_table(rows: Sequence[CeilingRow], in_flight: int, per_object: int, kopf: int) -> str:
    lines = [
        f"{in_flight} writes in flight; objects/s = writes/s / {per_object} (the operator's minimum per object) "
        f"and / {per_object + kopf} (with kopf's {kopf})",
        "| path | write | writes | seconds | writes/s | errors | objects/s at most: 6 writes | with kopf's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.path} | {row.write} | {row.writes} | {row.seconds:.1f} | {row.rate:.0f} | {row.errors} "
            f"| {row.rate / per_object:.1f} | {row.rate / (per_object + kopf):.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, action="append", help="InferenceServices to create (repeat; default 100)")
    parser.add_argument("--tick-seconds", type=float, default=5.0, help="the operator's --tick-seconds (default 5)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for convergence per N")
    parser.add_argument("--idle-seconds", type=float, default=60, help="settled window for idle requests")
    parser.add_argument("--in-flight", type=int, default=32, help="concurrent creates (default 32)")
    parser.add_argument("--operator-arg", action="append", default=[], help="extra `tritonop run` argument (repeat)")
    parser.add_argument("--keep", type=Path, help="keep operator logs in this folder")
    parser.add_argument(
        "--apiserver-profile",
        type=float,
        default=0,
        metavar="SECONDS",
        help="also take the API server's CPU profile over the first SECONDS of creation and print its top functions",
    )
    parser.add_argument(
        "--ceiling",
        type=int,
        nargs="?",
        const=6000,
        metavar="WRITES",
        help="instead: the test bed's write ceiling, WRITES ConfigMap writes (default 6000) per path and kind of write",
    )
    args = parser.parse_args(argv)
    if args.ceiling is not None:
        in_flight = OperatorConfig().api_concurrency  # what the operator keeps in flight
        with tempfile.TemporaryDirectory(prefix="tritonop-bench-ceiling-") as tmp:
            found = asyncio.run(ceiling(args.ceiling, in_flight, args.keep or Path(tmp)))
        print(ceiling_table(found, in_flight, per_object=MINIMUM_WRITES, kopf=KOPF_WRITES))
        return 0
    counts = args.count or [100]
    rows = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="tritonop-bench-scale-") as tmp:
            workdir = args.keep or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            print(f"N={count}: starting", file=sys.stderr, flush=True)
            row = asyncio.run(
                measure(
                    count,
                    tick=args.tick_seconds,
                    timeout=args.timeout,
                    idle_s=args.idle_seconds,
                    in_flight=args.in_flight,
                    operator_args=args.operator_arg,
                    workdir=workdir,
                    apiserver_profile_s=args.apiserver_profile,
                )
            )
            rows.append(row)
            if row.apiserver_profile:
                print(f"N={count}: the API server's CPU during creation:\n{row.apiserver_profile}", file=sys.stderr)
            print(
                json.dumps({k: v for k, v in dataclasses.asdict(row).items() if k != "apiserver_profile"}),
                file=sys.stderr,
                flush=True,
            )
    print(table(rows, args.tick_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
