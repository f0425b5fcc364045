"""tritonop run | render -f FILE | crd"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tritonop import API_VERSION, KIND, __version__
from tritonop.config import OperatorConfig


def _add_unrestricted_flag(parser: argparse.ArgumentParser) -> None:
    # Unset (None) unless given, so TRITONOP_ALLOW_UNRESTRICTED_SECURITY_CONTEXT still applies.
    parser.add_argument(
        "--allow-unrestricted-security-context",
        action="store_true",
        default=None,
        help="let spec.triton's securityContext and podSecurityContext leave Pod Security restricted "
        "(docs/gpus.md) [TRITONOP_ALLOW_UNRESTRICTED_SECURITY_CONTEXT]",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tritonop", description="Kubernetes operator for NVIDIA Triton.")
    parser.add_argument("--version", action="version", version=f"tritonop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", dest="namespaces", type=_nonempty, help="watch this namespace (repeat)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces (default)")
    run.add_argument("--prometheus-url", type=_url, help="default Prometheus for analysis [TRITONOP_PROMETHEUS_URL]")
    run.add_argument("--triton-image", type=_nonempty, help="default tritonserver image [TRITONOP_TRITON_IMAGE]")
    run.add_argument(
        "--triton-url-template",
        type=_url_template,
        help="how to reach a revision's Triton ({name} {revision} {namespace})",
    )
    run.add_argument(
        "--triton-pod-url-template", type=_url_template, help="how to reach one not-ready pod's Triton ({pod_ip})"
    )
    run.add_argument("--triton-endpoints-file", help="JSON map namespace/service -> URL (operator outside a cluster)")
    run.add_argument("--metrics-port", type=_port, help="port for /metrics and /healthz (default 8080)")
    run.add_argument("--tick-seconds", type=_positive_seconds, help="rollout timer interval (default 5)")
    run.add_argument(
        "--api-concurrency",
        type=_positive_int,
        metavar="N",
        help="Kubernetes API requests in flight at once (default 32) [TRITONOP_API_CONCURRENCY]",
    )
    run.add_argument(
        "--allow-prometheus-url",
        action="append",
        dest="allowed_prometheus_urls",
        type=_url,
        metavar="URL",
        help="a Prometheus URL (prefix) specs may name besides --prometheus-url (repeat) "
        "[TRITONOP_ALLOWED_PROMETHEUS_URLS, comma-separated]",
    )
    prom = run.add_argument_group(
        "Prometheus access", "how the operator authenticates to every Prometheus it queries (docs/prometheus.md)"
    )
    prom.add_argument(
        "--prometheus-bearer-token-file",
        metavar="PATH",
        help="file with a bearer token, re-read when it changes [TRITONOP_PROMETHEUS_BEARER_TOKEN_FILE]",
    )
    prom.add_argument(
        "--prometheus-basic-auth-username",
        type=_nonempty,
        metavar="NAME",
        help="basic-auth user name [TRITONOP_PROMETHEUS_BASIC_AUTH_USERNAME]",
    )
    prom.add_argument(
        "--prometheus-basic-auth-username-file",
        metavar="PATH",
        help="file with the basic-auth user name, instead [TRITONOP_PROMETHEUS_BASIC_AUTH_USERNAME_FILE]",
    )
    prom.add_argument(
        "--prometheus-basic-auth-password-file",
        metavar="PATH",
        help="file with the basic-auth password, re-read when it changes [TRITONOP_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE]",
    )
    prom.add_argument(
        "--prometheus-ca-file",
        metavar="PATH",
        help="CA bundle verifying Prometheus' certificate, instead of the system's [TRITONOP_PROMETHEUS_CA_FILE]",
    )
    prom.add_argument(
        "--prometheus-cert-file", metavar="PATH", help="client certificate (mTLS) [TRITONOP_PROMETHEUS_CERT_FILE]"
    )
    prom.add_argument("--prometheus-key-file", metavar="PATH", help="its key [TRITONOP_PROMETHEUS_KEY_FILE]")
    prom.add_argument(
        "--prometheus-insecure-skip-verify",
        action="store_true",
        default=None,
        help="do not verify Prometheus' certificate (warned at start) [TRITONOP_PROMETHEUS_INSECURE_SKIP_VERIFY]",
    )
    prom.add_argument(
        "--prometheus-tls-server-name",
        type=_nonempty,
        metavar="NAME",
        help="host name to expect in Prometheus' certificate (and send as SNI) [TRITONOP_PROMETHEUS_TLS_SERVER_NAME]",
    )
    prom.add_argument(
        "--prometheus-header",
        action="append",
        dest="prometheus_headers",
        type=_header,
        metavar="'NAME: VALUE'",
        help="extra header on every query, e.g. 'X-Scope-OrgID: team-a' (repeat) "
        "[TRITONOP_PROMETHEUS_HEADERS, one per line]",
    )
    run.add_argument(
        "--allow-file-path",
        action="append",
        dest="allowed_file_paths",
        type=_absolute_path,
        metavar="PREFIX",
        help="a node directory (prefix) file:// storage may mount (repeat; default: file:// refused) "
        "[TRITONOP_ALLOWED_FILE_PATHS, comma-separated]",
    )
    _add_unrestricted_flag(run)
    run.add_argument(
        "--network-policy",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a NetworkPolicy per InferenceService whose spec.networkPolicy.enabled is unset (default: on) "
        "[TRITONOP_NETWORK_POLICY]",
    )
    run.add_argument(
        "--metrics-namespace-selector",
        type=_selector,
        metavar="KEY=VALUE,...",
        help="namespaces whose pods may scrape Triton's metrics port; '' for all "
        "(default kubernetes.io/metadata.name=monitoring) [TRITONOP_METRICS_NAMESPACE_SELECTOR]",
    )
    run.add_argument(
        "--metrics-pod-selector",
        type=_selector,
        metavar="KEY=VALUE,...",
        help="which pods of those namespaces may scrape it (default: all) [TRITONOP_METRICS_POD_SELECTOR]",
    )
    run.add_argument(
        "--operator-namespace",
        metavar="NAMESPACE",
        help="the operator's own namespace: with --operator-pod-selector, its pods may read Triton's metrics "
        "port through each NetworkPolicy (sequential analysis) [TRITONOP_OPERATOR_NAMESPACE]",
    )
    run.add_argument(
        "--operator-pod-selector",
        type=_selector,
        metavar="KEY=VALUE,...",
        help="the operator's own pods (labels) [TRITONOP_OPERATOR_POD_SELECTOR]",
    )
    run.add_argument(
        "--api-key-secret-file",
        metavar="PATH",
        help="file with the secret Triton control-API keys derive from [TRITONOP_API_KEY_SECRET_FILE]",
    )
    run.add_argument(
        "--notifications-file",
        metavar="PATH",
        help="YAML/JSON list of notification sinks (webhook, slack, teams), re-read when it changes "
        "(docs/notifications.md) [TRITONOP_NOTIFICATIONS_FILE]",
    )
    run.add_argument("--peering", type=_nonempty, metavar="NAME", help="kopf peering name for HA (default: standalone)")
    run.add_argument(
        "--priority", type=_priority_text, default="0", help="peering priority: a number, or 'auto' (from the pod name)"
    )
    run.add_argument("-v", "--verbose", action="store_true")

    render = sub.add_parser("render", help="print the children an InferenceService becomes (no cluster needed)")
    render.add_argument(
        "-f", "--filename", required=True, help="YAML file with one or more InferenceServices ('-' for stdin)"
    )
    render.add_argument("--triton-image", help="default tritonserver image")
    _add_unrestricted_flag(render)

    sub.add_parser("crd", help="print the CustomResourceDefinition")
    return parser


# ---------------------------------------------------------------- flag values (argparse types)


def _nonempty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {port}")
    return port


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _url(text: str) -> str:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a URL: {text!r} ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL with a host: {text!r}")
    return text


def _url_template(text: str) -> str:
    """An http(s) URL once its placeholders ({name} {revision} {namespace} {pod_ip} ...) are filled."""
    _url(re.sub(r"\{\w+\}", "x", text))
    return text


def _header(text: str) -> str:
    from tritonop.analysis.prometheus import parse_header

    try:
        parse_header(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _absolute_path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"not an absolute path: {text!r}")
    return text


def _selector(text: str) -> str:
    from tritonop.selectors import parse_selector

    try:
        parse_selector(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _priority_text(text: str) -> str:
    if text != "auto":
        try:
            int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a number or 'auto', got {text!r}") from None
    return text


def _priority(text: str) -> int:
    if text != "auto":
        return int(text)
    # Distinct per pod, so two replicas never tie (equal priorities both freeze in kopf).
    host = os.environ.get("HOSTNAME", "")
    return 1 + int(hashlib.sha256(host.encode()).hexdigest(), 16) % (2**31 - 2)


def _run_config(args: argparse.Namespace) -> OperatorConfig:
    return OperatorConfig.from_env(
        namespaces=tuple(args.namespaces) if args.namespaces else None,
        prometheus_url=args.prometheus_url,
        triton_image=args.triton_image,
        triton_url_template=args.triton_url_template,
        triton_pod_url_template=args.triton_pod_url_template,
        triton_endpoints_file=args.triton_endpoints_file,
        metrics_port=args.metrics_port,
        tick_seconds=args.tick_seconds,
        api_concurrency=args.api_concurrency,
        api_key_secret_file=args.api_key_secret_file,
        allowed_prometheus_urls=tuple(args.allowed_prometheus_urls) if args.allowed_prometheus_urls else None,
        allowed_file_paths=tuple(args.allowed_file_paths) if args.allowed_file_paths else None,
        allow_unrestricted_security_context=args.allow_unrestricted_security_context,
        network_policy=args.network_policy,
        metrics_namespace_selector=args.metrics_namespace_selector,
        metrics_pod_selector=args.metrics_pod_selector,
        operator_namespace=args.operator_namespace,
        operator_pod_selector=args.operator_pod_selector,
        notifications_file=args.notifications_file,
        prometheus_bearer_token_file=args.prometheus_bearer_token_file,
        prometheus_basic_auth_username=args.prometheus_basic_auth_username,
        prometheus_basic_auth_username_file=args.prometheus_basic_auth_username_file,
        prometheus_basic_auth_password_file=args.prometheus_basic_auth_password_file,
        prometheus_ca_file=args.prometheus_ca_file,
        prometheus_cert_file=args.prometheus_cert_file,
        prometheus_key_file=args.prometheus_key_file,
        prometheus_insecure_skip_verify=args.prometheus_insecure_skip_verify,
        prometheus_tls_server_name=args.prometheus_tls_server_name,
        prometheus_headers=tuple(args.prometheus_headers) if args.prometheus_headers else None,
    )


def _run(args: argparse.Namespace) -> int:
    import kopf

    from tritonop import preflight
    from tritonop.controller.triton_keys import read_operator_secret
    from tritonop.handlers import build_registry

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
    )
    # One line per API request is noise at INFO; -v shows them.
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # kopf logs every timer run at INFO; our own logger reports what changed.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        config = _run_config(args)
    except ValueError as err:  # a TRITONOP_* variable out of range (flags are checked by the parser)
        print(f"tritonop run: {err}", file=sys.stderr)
        return 2
    try:
        read_operator_secret(config.api_key_secret_file)  # a broken secret file stops here, not in kopf
    except ValueError as err:
        print(f"tritonop run: {err}", file=sys.stderr)
        return 2
    if config.notifications_file:
        from tritonop.notify.config import ConfigError, load_config

        try:
            load_config(config.notifications_file)  # a broken notifications file stops here too
        except ConfigError as err:
            print(f"tritonop run: --notifications-file {config.notifications_file}: {err}", file=sys.stderr)
            return 2
    from tritonop.analysis.prometheus import PrometheusAccess, PrometheusAccessError

    try:
        access = PrometheusAccess.from_config(config)
        access.check()  # a wrong credential or certificate path stops here, not at the first analysis
    except (ValueError, PrometheusAccessError) as err:
        print(f"tritonop run: {err}", file=sys.stderr)
        return 2
    for warning in access.warnings((config.prometheus_url, *config.allowed_prometheus_urls)):
        logging.getLogger("tritonop").warning("%s", warning)
    try:
        preflight.check(config.namespaces)  # bounded: kopf would retry a broken connection forever
    except preflight.PreflightError as err:
        print(f"tritonop: {err}", file=sys.stderr)
        return 1
    kopf.run(
        registry=build_registry(config),
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=_priority(args.priority),
    )
    return 0


def _render(args: argparse.Namespace) -> int:
    from tritonop.children.errors import BuildError
    from tritonop.render import render

    source = args.filename
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        docs = [d for d in yaml.safe_load_all(text) if d]
    except (OSError, yaml.YAMLError) as err:
        print(f"tritonop render: {source}: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    services = [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]
    if not services:
        print(f"tritonop render: {source}: no {KIND} ({API_VERSION}) found", file=sys.stderr)
        return 1
    config = OperatorConfig.from_env(
        triton_image=args.triton_image, allow_unrestricted_security_context=args.allow_unrestricted_security_context
    )
    children = []
    for doc in services:
        try:
            children += render(doc, config)
        except BuildError as err:
            name = (doc.get("metadata") or {}).get("name", "?")
            print(f"tritonop render: {source}: {KIND} {name}: {err}", file=sys.stderr)
            return 1
    sys.stdout.write(yaml.safe_dump_all(children, sort_keys=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "render":
        return _render(args)
    from tritonop.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
