"""Pure: what the kubelet stand-in reads from a Deployment, and the status it writes back.

A Deployment's pod template becomes a local tritonserver command line: the container's
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


def desired_replicas(deployment: Mapping[str, Any]) -> int:
    """spec.replicas; the API server defaults an absent value to 1."""
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def template_hash(template: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def pod_plan(deployment: Mapping[str, Any]) -> PodPlan:
    """The local run plan of a Deployment's pods; PodSpecError when it cannot run here."""
    template = (deployment.get("spec") or {}).get("template") or {}
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
    mounts = sorted(
        container.get("volumeMounts") or [], key=lambda m: len(m.get("mountPath", "")), reverse=True
    )
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


def deployment_status(
    *, generation: int | None, desired: int, running: int, ready: int, problem: str | None = None
) -> dict[str, Any]:
    """The status a Deployment controller reports for these pod counts.

    Deployments here use maxUnavailable 0, so the Deployment is Available when every
    desired replica is ready (and trivially so at 0 replicas, as in Kubernetes).
    """
    available = ready >= desired
    message = problem or f"{ready}/{desired} pods ready"
    return {
        "observedGeneration": generation or 1,
        "replicas": running,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "updatedReplicas": running,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "message": message,
            }
        ],
    }

