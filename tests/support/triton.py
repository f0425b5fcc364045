"""Real tritonserver processes for tests, on CPU, from the nvidia-pytriton wheel.

The wheel ships the real ``tritonserver`` binary, its backends and one Python-backend
stub per Python version. This module wires them together without writing into
site-packages:

- ``backend_directory()`` builds a private backends folder (cached per user and
  install under the temp dir) whose ``python/`` holds the 3.11 stub next to links to
  the backend library;
- ``triton_env()`` adds the library paths the binary and the stub need;
- ``write_model()`` writes a Python-backend test model with tunable misbehaviour;
- ``TritonProcess`` runs the binary with any argument list (the end-to-end kubelet
  stand-in passes a Deployment's container args through ``localize_args``);
- ``TritonServer`` is the everyday fixture: free ports, explicit model control, the
  models you name.

Model load failures (found on tritonserver 2.51): in ``explicit`` mode a model named by
``--load-model`` that fails to load makes tritonserver exit at startup ("failed to load
all models") unless ``--exit-on-error=false``. With that flag the server stays up, live
but (with strict readiness) not ready, and the repository index reports the failed
version as UNAVAILABLE with the model's own exception text as ``reason``; that is what
the operator's readiness gate reads. ``TritonServer`` therefore passes
``--exit-on-error=false`` unless told otherwise.

Typical use::

    repo = tmp_path / "repo"
    write_model(repo, "doubler")
    with TritonServer(repo, ["doubler"]) as server:
        assert server.wait_ready(30), server.recent_output()
        ... server.http_url ...
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "LOAD_FAILURE_MESSAGE",
    "TritonProcess",
    "TritonServer",
    "backend_directory",
    "expand_env_references",
    "free_port",
    "free_ports",
    "localize_args",
    "triton_env",
    "tritonserver_binary",
    "write_model",
]

# What a model written with fail_load=True raises in initialize(); Triton repeats it as
# the UNAVAILABLE reason in the repository index.
LOAD_FAILURE_MESSAGE = "tritonop test model refused to load (fail_load=True)"

_PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
_STUB_NAME = "triton_python_backend_stub"
_ADDRESS_FLAGS = ("--http-address", "--grpc-address", "--metrics-address")


# ---------------------------------------------------------------- the installed pieces


@functools.cache
def _tritonserver_root() -> Path:
    """site-packages/pytriton/tritonserver, found without importing pytriton (slow, noisy)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nvidia-pytriton is not installed: pip install nvidia-pytriton")
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def tritonserver_binary() -> Path:
    """The real tritonserver executable shipped by nvidia-pytriton."""
    binary = _tritonserver_root() / "bin" / "tritonserver"
    if not binary.is_file():
        raise FileNotFoundError(f"tritonserver binary missing at {binary}")
    return binary


@functools.cache
def backend_directory() -> Path:
    """A backends folder with the Python-backend stub for this interpreter, built once.

    Every backend the wheel ships is linked in; ``python/`` is a real folder holding
    links to the backend library and its utils plus a copy of this Python version's
    stub (Triton looks for the stub next to the backend library). The folder is keyed
    by the wheel's location and contents, so reinstalls get a fresh one, and it is
    created atomically (built aside, then renamed) so parallel test processes agree.
    """
    source = _tritonserver_root() / "backends"
    stub = _tritonserver_root() / "python_backend_stubs" / _PYTHON_VERSION / _STUB_NAME
    if not stub.is_file():
        raise FileNotFoundError(f"no Python-backend stub for Python {_PYTHON_VERSION} at {stub}")
    fingerprint = hashlib.sha256()
    for part in (source, stub):
        info = part.stat()
        fingerprint.update(f"{part}:{info.st_mtime_ns}:{info.st_size}".encode())
    target = Path(tempfile.gettempdir()) / f"tritonop-backends-{os.getuid()}-{fingerprint.hexdigest()[:12]}"
    if (target / "python" / _STUB_NAME).is_file():
        return target
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        for backend in source.iterdir():
            if backend.name == "python":
                python_dir = staging / "python"
                python_dir.mkdir()
                for item in backend.iterdir():
                    (python_dir / item.name).symlink_to(item)
                shutil.copy2(stub, python_dir / _STUB_NAME)
            else:
                (staging / backend.name).symlink_to(backend)
        os.rename(staging, target)
    except OSError:
        # Another process won the race (rename onto a non-empty folder fails); use theirs.
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "python" / _STUB_NAME).is_file():
            raise
    return target


def triton_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for tritonserver: ``base`` (default os.environ) plus the paths it needs.

    - LD_LIBRARY_PATH gets this interpreter's LIBDIR first: the stub links
      ``libpython3.11.so.1.0`` and must get the same build as this interpreter (the
      system's 3.11.2 fails under pyenv's 3.11.7 with ``'_thread.RLock' object has no
      attribute '_recursion_count'``), then the wheel's bundled libraries.
    - PATH gets this interpreter's bin folder first: the embedded Python in the stub
      finds its prefix by looking up ``python3`` on PATH, so a virtualenv's packages
      (numpy) are importable by models.
    """
    env = dict(os.environ if base is None else base)
    libdir = sysconfig.get_config_var("LIBDIR")
    bundled = _tritonserver_root().parent.parent / "nvidia_pytriton.libs"
    env["LD_LIBRARY_PATH"] = _join_paths([str(libdir), str(bundled)], env.get("LD_LIBRARY_PATH"))
    env["PATH"] = _join_paths([str(Path(sys.executable).parent)], env.get("PATH"))
    return env


def _join_paths(first: Sequence[str], rest: str | None) -> str:
    return os.pathsep.join([*first, *([rest] if rest else [])])


# ---------------------------------------------------------------- ports


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (all held open while choosing)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_ports(1)[0]


# ---------------------------------------------------------------- test models

_MODEL_CONFIG = """\
name: "{name}"
backend: "python"
max_batch_size: 0
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
parameters {{ key: "behaviour" value: {{ string_value: '{behaviour}' }} }}
"""

# One file for every test model; what it does comes from the config's "behaviour".
_MODEL_PY = '''\
"""tritonop test model: OUTPUT0 = INPUT0 * scale, with optional delay and failures."""

import json
import math
import random
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        behaviour = json.loads(config["parameters"]["behaviour"]["string_value"])
        behaviour.update(behaviour["versions"].get(args["model_version"], {}))
        if behaviour["fail_load"]:
            raise pb_utils.TritonModelException(behaviour["load_failure_message"])
        self.scale = np.float32(behaviour["scale"])
        self.delay_s = behaviour["delay_ms"] / 1000.0
        self.failure_rate = behaviour["failure_rate"]
        seed = behaviour["seed"]
        self.rng = None if seed is None else random.Random(seed)
        self.served = 0

    def _should_fail(self):
        # Seeded: random draws. Unseeded: evenly spread, exactly rate * n of the first n fail.
        if self.rng is not None:
            return self.rng.random() < self.failure_rate
        i = self.served
        return math.floor((i + 1) * self.failure_rate) > math.floor(i * self.failure_rate)

    def execute(self, requests):
        responses = []
        for request in requests:
            fail = self._should_fail()
            self.served += 1
            if self.delay_s:
                time.sleep(self.delay_s)
            if fail:
                # Raising (not an error response) is what Triton counts as a failed request.
                raise pb_utils.TritonModelException(f"injected failure on request {self.served}")
            data = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            output = pb_utils.Tensor("OUTPUT0", (data * self.scale).astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses
'''


def write_model(
    repo: Path,
    name: str,
    *,
    versions: Sequence[int] = (1,),
    failure_rate: float = 0.0,
    delay_ms: float = 0.0,
    fail_load: bool = False,
    scale: float = 2.0,
    seed: int | None = None,
    per_version: Mapping[int, Mapping[str, Any]] | None = None,
    version_policy: Sequence[int] | None = None,
) -> Path:
    """Write a Python-backend model ``name`` into ``repo``; returns the model folder.

    Input ``INPUT0`` FP32 ``[-1]``, output ``OUTPUT0`` FP32 = INPUT0 * ``scale``,
    ``max_batch_size: 0``, one CPU instance.

    - ``failure_rate``: share of requests that raise ``TritonModelException`` (counted
      in ``nv_inference_request_failure``). Without ``seed`` failures are evenly spread
      and exact: request i (from 0) fails when floor((i+1)*rate) > floor(i*rate). With
      ``seed`` they are drawn from a seeded RNG. When Triton hands several requests to
      one execute() call, a failure fails all of them; with the default scheduler it
      hands one.
    - ``delay_ms``: sleep per request.
    - ``fail_load``: raise ``LOAD_FAILURE_MESSAGE`` in initialize(), so the model fails
      to load.
    - ``per_version``: version -> any of the above (``scale``, ``failure_rate``, ``delay_ms``,
      ``fail_load``) for that version only, e.g. ``{3: {"failure_rate": 0.3}}``.
    - ``version_policy``: the versions Triton loads at start (``specific``); default: the latest.
    """
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate must be within 0..1, got {failure_rate}")
    if not versions:
        raise ValueError("a model needs at least one version")
    behaviour = {
        "scale": scale,
        "delay_ms": delay_ms,
        "failure_rate": failure_rate,
        "fail_load": fail_load,
        "seed": seed,
        "load_failure_message": LOAD_FAILURE_MESSAGE,
        "versions": {str(v): dict(b) for v, b in (per_version or {}).items()},
    }
    model_dir = Path(repo) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    config = _MODEL_CONFIG.format(name=name, behaviour=json.dumps(behaviour))
    if version_policy is not None:
        config += f"version_policy: {{ specific: {{ versions: [{', '.join(str(v) for v in version_policy)}] }} }}\n"
    (model_dir / "config.pbtxt").write_text(config)
    for version in versions:
        version_dir = model_dir / str(version)
        version_dir.mkdir(exist_ok=True)
        (version_dir / "model.py").write_text(_MODEL_PY)
    return model_dir


# ---------------------------------------------------------------- argument lists


def flag_value(args: Sequence[str], flag: str) -> str | None:
    """The last value given for ``flag`` as ``--flag=V`` or ``--flag V`` (Triton: last wins)."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(args):
            value = args[i + 1]
    return value


def _without_flags(args: Sequence[str], flags: Iterable[str]) -> list[str]:
    """``args`` minus every occurrence of ``flags`` in either spelling."""
    flags = tuple(flags)
    kept: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg in flags:
            skip_next = True
        elif not arg.startswith(tuple(f + "=" for f in flags)):
            kept.append(arg)
    return kept


def expand_env_references(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``$(VAR)`` in each argument replaced by ``env[VAR]``, as the kubelet expands a container's
    command and args: an undefined ``$(VAR)`` stays as written, ``$$`` is a literal ``$``."""
    return [_expand(arg, env) for arg in args]


def _expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def localize_args(
    args: Sequence[str],
    *,
    model_repository: Path | str,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
) -> list[str]:
    """A container's tritonserver args made runnable here: local repository, given ports.

    Every ``--model-repository`` and port flag is replaced (either spelling); all other
    arguments keep their order. A leading ``tritonserver`` command word is kept as is
    (``TritonProcess`` swaps it for the real binary).
    """
    replaced = {
        "--model-repository": str(model_repository),
        "--http-port": str(http_port),
        "--grpc-port": str(grpc_port),
        "--metrics-port": str(metrics_port),
    }
    return _without_flags(args, replaced) + [f"{flag}={value}" for flag, value in replaced.items()]


# ---------------------------------------------------------------- processes


class TritonProcess:
    """One real tritonserver process, started from an arbitrary argument list.

    ``args`` are tritonserver's arguments; a first element ``tritonserver`` (or any path
    ending in ``/tritonserver``) is replaced by the real binary. Local defaults are
    added when absent: ``--backend-directory`` (``backend_directory()``) and
    127.0.0.1 for the HTTP, gRPC and metrics addresses. ``http_url`` and
    ``metrics_url`` come from ``--http-port`` and ``--metrics-port`` in ``args``
    (Triton's defaults 8000 and 8002 otherwise). Output goes to ``log_path`` (a temp
    file unless given); read it with ``recent_output()``.

    The process runs in its own session so that ``stop()`` also reaches the
    Python-backend stub processes it spawned.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.args = self._complete_args(args)
        self.env = triton_env() if env is None else dict(env)
        self.http_port = int(flag_value(self.args, "--http-port") or 8000)
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.metrics_port = int(flag_value(self.args, "--metrics-port") or 8002)
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self._owns_log = log_path is None
        if log_path is None:
            handle, name = tempfile.mkstemp(prefix="tritonserver-", suffix=".log")
            os.close(handle)
            log_path = Path(name)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _complete_args(args: Sequence[str]) -> list[str]:
        rest = list(args)
        if rest and (rest[0] == "tritonserver" or rest[0].endswith("/tritonserver")):
            rest = rest[1:]
        defaults = [f"{flag}=127.0.0.1" for flag in _ADDRESS_FLAGS if flag_value(rest, flag) is None]
        if flag_value(rest, "--backend-directory") is None:
            defaults.append(f"--backend-directory={backend_directory()}")
        return [str(tritonserver_binary()), *rest, *defaults]

    # -- lifecycle

    def start(self) -> Self:
        """Start the process (once); returns self."""
        if self._process is not None:
            raise RuntimeError("this TritonProcess was already started")
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                self.args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                process.wait(timeout)
        # Stubs outlive a killed server briefly; end whatever is left in its session.
        self._signal(signal.SIGKILL)
        return process.returncode

    def _signal(self, signum: int) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def close(self) -> None:
        """Stop, and delete the log when this object created it."""
        self.stop()
        if self._owns_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- state

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, or None while running (or before start)."""
        return None if self._process is None else self._process.poll()

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def recent_output(self, lines: int = 60) -> str:
        """The last ``lines`` lines tritonserver wrote (stdout and stderr)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_live(self, timeout: float = 30.0) -> bool:
        """Poll /v2/health/live until 200; False on timeout or when the process exits."""
        return self._wait_for("/v2/health/live", timeout)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Poll /v2/health/ready until 200; False on timeout or when the process exits."""
        return self._wait_for("/v2/health/ready", timeout)

    def _wait_for(self, path: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return False
            try:
                with urllib.request.urlopen(self.http_url + path, timeout=2.0) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or answering 400 (not ready)
            time.sleep(0.2)
        return False


class TritonServer(TritonProcess):
    """tritonserver serving ``models`` from ``repo`` on free local ports.

    Explicit model control loads exactly ``models``; ``--exit-on-error=false`` keeps
    the server up when one of them fails to load (see the module docstring).
    ``extra_args`` come last, so they override. Entering the context starts the
    server; call ``wait_ready``/``wait_live`` yourself (a server with a failing model
    is live but never ready).
    """

    def __init__(
        self,
        repo: Path,
        models: Sequence[str],
        *,
        extra_args: Sequence[str] = (),
        strict_readiness: bool = True,
        model_control_mode: str = "explicit",
        exit_on_error: bool = False,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        http_port, grpc_port, metrics_port = free_ports(3)
        args = [
            f"--model-repository={repo}",
            f"--model-control-mode={model_control_mode}",
            *(f"--load-model={model}" for model in models if model_control_mode == "explicit"),
            f"--strict-readiness={str(strict_readiness).lower()}",
            f"--exit-on-error={str(exit_on_error).lower()}",
            f"--http-port={http_port}",
            f"--grpc-port={grpc_port}",
            f"--metrics-port={metrics_port}",
            "--allow-gpu-metrics=false",
            *extra_args,
        ]
        super().__init__(args, env=env, log_path=log_path)
        self.repo = Path(repo)
        self.models = list(models)
        self.grpc_port = grpc_port
