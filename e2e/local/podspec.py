"""Pure: what the kubelet stand-in reads from a Pod, and the status it writes back.

A Pod (scheduled by the real scheduler, for the pod-level stand-in) becomes a local tritonserver
command line: the container's
own ``command`` + ``args``, with the model repository path mapped from the container's
mount to the hostPath folder behind it, and ``$(VAR)`` references expanded from the
container's env (literal values, and secretKeyRef values from Secrets the caller looks
up, as the kubelet does). Nothing here starts processes or reads files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.triton import expand_env_references, flag_value

MODEL_REPOSITORY_FLAG = "--model-repository"


class PodSpecError(ValueError):
    """The pod template asks for something a local process cannot provide."""


@dataclass(frozen=True)
class PodPlan:
    """How to run one replica of a Deployment here."""

    args: list[str]  # the container's command + args, before ports and paths are localized
    repository: Path  # the model repository folder on this machine
    env: dict[str, str]  # the container's literal env values
    secret_env: dict[str, tuple[str, str]]  # env var -> (Secret name, key) of secretKeyRef entries
    labels: dict[str, str]  # the pod template's labels
    template_hash: str  # changes whenever the pod template changes (as pod-template-hash does)


def template_hash(template: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def template_plan(template: Mapping[str, Any]) -> PodPlan:
    """The local run plan of a pod template or of a Pod (both have metadata and spec)."""
    pod_spec = template.get("spec") or {}
    containers = pod_spec.get("containers") or []
    if len(containers) != 1:
        raise PodSpecError(f"expected one container, found {len(containers)}")
    container = containers[0]
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    repository_arg = flag_value(args, MODEL_REPOSITORY_FLAG)
    if repository_arg is None:
        raise PodSpecError(f"the container's command line has no {MODEL_REPOSITORY_FLAG}")
    return PodPlan(
        args=args,
        repository=local_repository(repository_arg, container, pod_spec.get("volumes") or []),
        env=literal_env(container),
        secret_env=secret_env_refs(container),
        labels=dict((template.get("metadata") or {}).get("labels") or {}),
        template_hash=template_hash(template),
    )


def local_repository(container_path: str, container: Mapping[str, Any], volumes: list[dict[str, Any]]) -> Path:
    """The hostPath folder a container path lives in, through the container's volume mounts.

    The longest mount path that contains ``container_path`` wins, as in a real container.
    Only hostPath volumes exist on this machine; anything else (a PVC, an emptyDir filled
    by an init container, object storage) is a PodSpecError.
    """
    if "://" in container_path:
        raise PodSpecError(f"model repository {container_path} is remote storage; only file:// runs locally")
    path = posixpath.normpath(container_path)
    mounts = sorted(container.get("volumeMounts") or [], key=lambda m: len(m.get("mountPath", "")), reverse=True)
    for mount in mounts:
        mount_path = posixpath.normpath(mount.get("mountPath", ""))
        if path != mount_path and not path.startswith(mount_path.rstrip("/") + "/"):
            continue
        volume = next((v for v in volumes if v.get("name") == mount.get("name")), None)
        if volume is None:
            raise PodSpecError(f"volume mount {mount.get('name')!r} names no volume")
        host_path = (volume.get("hostPath") or {}).get("path")
        if not host_path:
            kind = next((k for k in volume if k != "name"), "unknown")
            raise PodSpecError(f"volume {volume['name']!r} is {kind}, not hostPath: it cannot be mounted locally")
        return Path(host_path, posixpath.relpath(path, mount_path))
    raise PodSpecError(f"no volume is mounted at the model repository path {container_path}")


def literal_env(container: Mapping[str, Any]) -> dict[str, str]:
    """Env vars with literal values (secretKeyRef and friends need a real kubelet)."""
    return {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}


def secret_env_refs(container: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Env vars taken from Secrets: name -> (Secret name, key)."""
    refs = {}
    for entry in container.get("env") or []:
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            refs[entry["name"]] = (ref["name"], ref["key"])
    return refs


def container_env(plan: PodPlan, secret: Callable[[str], Mapping[str, Any] | None]) -> dict[str, str]:
    """The container's environment: literal values and values from Secrets (``secret(name)``
    returns the Secret object, None when absent). PodSpecError for a missing Secret or key,
    where a kubelet reports CreateContainerConfigError."""
    env = dict(plan.env)
    for name, (secret_name, key) in plan.secret_env.items():
        obj = secret(secret_name)
        if obj is None:
            raise PodSpecError(f"secret {secret_name!r} not found")
        value = secret_value(obj, key)
        if value is None:
            raise PodSpecError(f"couldn't find key {key} in Secret {secret_name}")
        env[name] = value
    return env


def secret_value(secret: Mapping[str, Any], key: str) -> str | None:
    """A Secret's value for ``key``: ``stringData`` as written, ``data`` base64-decoded."""
    string_data = secret.get("stringData") or {}
    if key in string_data:
        return str(string_data[key])
    data = secret.get("data") or {}
    if key not in data:
        return None
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as err:
        raise PodSpecError(f"key {key} of a Secret is not base64-encoded UTF-8") from err


def command_line(plan: PodPlan, env: Mapping[str, str]) -> list[str]:
    """The container's command + args with ``$(VAR)`` expanded from its env, as the kubelet runs it."""
    return expand_env_references(plan.args, env)


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service's equality selector; an empty selector selects nothing (no Endpoints)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------- the pod-level stand-in's status

READY_PATH = "/v2/health/ready"


def readiness_path(pod: Mapping[str, Any]) -> str:
    """The path of the (single) container's httpGet readinessProbe; Triton's ready endpoint by default."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    probe = (containers[0].get("readinessProbe") or {}).get("httpGet") or {}
    return str(probe.get("path") or READY_PATH)


@dataclass(frozen=True)
class ContainerState:
    """What the pod-level stand-in knows of a pod's one container (its tritonserver process)."""

    running_since: str | None  # RFC 3339 start of the running process; None when not running
    ready: bool  # the readiness probe's last answer
    restarts: int
    waiting: tuple[str, str] | None = None  # (reason, message) while not running
    last_exit: tuple[int, str] | None = None  # (exit code, finished at) of the previous run


def pod_status(
    pod: Mapping[str, Any],
    container: ContainerState,
    *,
    start_time: str,
    ready_since: str,
    pod_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The status a kubelet writes for a one-container pod in ``container``'s state.

    Phase Pending until the container first ran (a CreateContainerConfigError pod never
    does), Running after; Ready and ContainersReady follow the probe (their transition
    time is ``ready_since``, when readiness last changed); the container's status carries
    restartCount, started, ready, the current state (running, or waiting with a reason
    such as CrashLoopBackOff) and the last termination.
    """
    spec = pod.get("spec") or {}
    uid = (pod.get("metadata") or {}).get("uid", "")
    spec_container = (spec.get("containers") or [{"name": "triton"}])[0]
    name, image = spec_container["name"], spec_container.get("image", "")
    ready = container.ready and container.running_since is not None
    ever_ran = container.running_since is not None or container.restarts > 0 or container.last_exit is not None

    def condition(kind: str, true: bool, since: str) -> dict[str, Any]:
        return {"type": kind, "status": "True" if true else "False", "lastProbeTime": None, "lastTransitionTime": since}

    state: dict[str, Any]
    if container.running_since is not None:
        state = {"running": {"startedAt": container.running_since}}
    else:
        reason, message = container.waiting or ("ContainerCreating", "")
        state = {"waiting": {"reason": reason, "message": message} if message else {"reason": reason}}
    status: dict[str, Any] = {
        "name": name,
        "image": image,
        "imageID": f"standin://{image}",
        "containerID": f"standin://{uid}/{name}",
        "restartCount": container.restarts,
        "started": container.running_since is not None,
        "ready": ready,
        "state": state,
        "lastState": {},
    }
    if container.last_exit is not None:
        code, finished = container.last_exit
        status["lastState"] = {
            "terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "finishedAt": finished}
        }
    return {
        "phase": "Running" if ever_ran else "Pending",
        "conditions": [
            condition("PodReadyToStartContainers", True, start_time),
            condition("Initialized", True, start_time),
            condition("Ready", ready, ready_since),
            condition("ContainersReady", ready, ready_since),
            condition("PodScheduled", True, start_time),
        ],
        "hostIP": pod_ip,
        "hostIPs": [{"ip": pod_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "containerStatuses": [status],
    }
