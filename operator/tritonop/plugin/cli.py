"""`kubectl tritonop`: see and steer InferenceService rollouts (docs/plugin.md).

Exit codes: 0 done, 1 error (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from tritonop.kube.credentials import CredentialError, Credentials, discover
from tritonop.plugin import render
from tritonop.plugin.api import Api, PluginError
from tritonop.rollout.manual import ABORT_ANNOTATION, PROMOTE_ANNOTATION

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
STALE_WAIT_S = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def parser() -> argparse.ArgumentParser:
    def connection_flags(p: argparse.ArgumentParser, default: Any) -> None:
        p.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
        p.add_argument("--context", default=default, help="kubeconfig context to use")
        p.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file")

    top = argparse.ArgumentParser(
        prog="kubectl tritonop", description="See and steer InferenceService canary rollouts."
    )
    connection_flags(top, None)
    # Flags after the command too (kubectl style); SUPPRESS keeps the ones given before it.
    common = argparse.ArgumentParser(add_help=False)
    connection_flags(common, argparse.SUPPRESS)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    ls = sub.add_parser("list", parents=[common], help="InferenceServices and their rollouts")
    ls.add_argument("-A", "--all-namespaces", action="store_true", help="list in all namespaces")
    for name, text in (
        ("get", "one rollout in detail: revisions, step, checks, events"),
        ("history", "past rollouts: what status keeps and the rollout Events"),
    ):
        sub.add_parser(name, parents=[common], help=text).add_argument("name")
    watch = sub.add_parser("watch", parents=[common], help="`get`, redrawn as it changes (Ctrl-C stops)")
    watch.add_argument("name")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
    promote = sub.add_parser(
        "promote", parents=[common], help="promote the canary now (the promote annotation naming it)"
    )
    promote.add_argument("name")
    promote.add_argument(
        "--variant",
        metavar="VARIANT",
        help="an Experiment's pick: B (the canary) or a running variant beyond it, by name",
    )
    for name, text in (
        ("abort", "roll the canary back now (the abort annotation naming it)"),
        ("pause", "hold the rollout at its current weight (spec.rollout.paused: true)"),
        ("resume", "let a paused rollout continue (spec.rollout.paused: false)"),
    ):
        sub.add_parser(name, parents=[common], help=text).add_argument("name")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # exits 2 on a usage error
    try:
        return run(args, sys.stdout)
    except (PluginError, CredentialError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # `kubectl tritonop list | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def run(args: argparse.Namespace, out: TextIO, *, make_api: Callable[[Credentials], Api] = Api) -> int:
    credentials = discover(kubeconfig=args.kubeconfig, context=args.context)
    namespace: str = args.namespace or credentials.namespace
    api = make_api(credentials)
    try:
        command: Callable[[Api, argparse.Namespace, str, TextIO], int] = COMMANDS[args.command]
        return command(api, args, namespace, out)
    finally:
        api.close()


def cmd_list(api: Api, args: argparse.Namespace, namespace: str, out: TextIO) -> int:
    items = api.isvcs(None if args.all_namespaces else namespace)
    if not items:
        where = "" if args.all_namespaces else f" in {namespace} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
        return 0
    for line in render.list_lines(items, _now(), all_namespaces=args.all_namespaces):
        print(line, file=out)
    return 0


def view(api: Api, namespace: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    obj = api.isvc(namespace, name)
    return obj, api.deployments(namespace, name), api.events(namespace, name)


def cmd_get(api: Api, args: argparse.Namespace, namespace: str, out: TextIO) -> int:
    obj, deployments, events = view(api, namespace, args.name)
    print("\n".join(render.get_lines(obj, deployments, events, _now())), file=out)
    return 0


def cmd_history(api: Api, args: argparse.Namespace, namespace: str, out: TextIO) -> int:
    obj = api.isvc(namespace, args.name)
    print("\n".join(render.history_lines(obj, api.events(namespace, args.name), _now())), file=out)
    return 0


def change_key(obj: dict[str, Any], deployments: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """What a watch redraws on: the object's spec, annotations and status, each revision's
    replicas, and the Events (not the clock: ages alone redraw only on a terminal)."""
    meta = obj.get("metadata") or {}
    return json.dumps(
        [
            obj.get("spec"),
            meta.get("annotations"),
            obj.get("status"),
            sorted(
                (
                    d["metadata"]["name"],
                    (d.get("spec") or {}).get("replicas"),
                    (d.get("status") or {}).get("readyReplicas"),
                )
                for d in deployments
            ),
            sorted(((e.get("metadata") or {}).get("uid", ""), e.get("count", 1)) for e in events),
        ],
        sort_keys=True,
        default=str,
    )


def cmd_watch(
    api: Api,
    args: argparse.Namespace,
    namespace: str,
    out: TextIO,
    *,
    sleep: Callable[[float], None] = time.sleep,
    polls: int | None = None,
) -> int:
    """Poll and redraw: on a terminal in place (cursor home, clear) every poll, so ages stay
    current; otherwise a new frame appended only when something changed."""
    tty = out.isatty()
    last: str | None = None
    count = 0
    try:
        while polls is None or count < polls:
            count += 1
            obj, deployments, events = view(api, namespace, args.name)
            key = change_key(obj, deployments, events)
            if tty or key != last:
                frame = "\n".join(render.get_lines(obj, deployments, events, _now()))
                if tty:
                    out.write(CLEAR + frame + "\n")
                else:
                    out.write(("\n" if last is not None else "") + frame + "\n")
                out.flush()
                last = key
            if polls is None or count < polls:
                sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    return 0


def canary_of(obj: dict[str, Any], action: str) -> str:
    """What the annotation names: the canary revision, or an in-place switch's candidate as
    ``v<version>`` (rollout.strategy InPlace)."""
    meta, status = obj["metadata"], obj.get("status") or {}
    canary = status.get("canaryRevision")
    candidate = (status.get("inPlace") or {}).get("candidate")
    if not canary and candidate:
        return f"v{candidate}"
    if not canary:
        stable = status.get("stableRevision")
        now = f" (stable revision {stable}, phase {status.get('phase')})" if stable else ""
        raise PluginError(
            f'inferenceservice "{meta["name"]}" in namespace "{meta["namespace"]}" has no canary to {action}{now}'
        )
    return str(canary)


def variant_of(obj: dict[str, Any], variant: str) -> tuple[str, str]:
    """The revision the promote annotation names to pick an Experiment's ``variant`` (B: the
    canary revision; a variant beyond B: its revision from status.canary.variants, while it
    runs), and how to say it."""
    meta, status = obj["metadata"], obj.get("status") or {}
    canary = status.get("canaryRevision")
    experiment = status.get("experiment") or {}
    arms = render.arms(status)
    where = f'inferenceservice "{meta["name"]}" in namespace "{meta["namespace"]}"'
    running = bool(canary) and (
        render.strategy_of(obj) == "Experiment" or bool(arms) or (bool(experiment) and not experiment.get("ended"))
    )
    if not running:
        winner = f", winner {experiment['winner']}" if experiment.get("ended") and experiment.get("winner") else ""
        ended = f" (the last one ended{winner})" if experiment.get("ended") else ""
        raise PluginError(f"{where} runs no experiment to pick a variant of{ended}")
    live = [a for a in arms if not a.get("stopped")]
    choices = ", ".join(["B", *(str(a.get("name")) for a in live)])
    if variant == "B":
        return str(canary), f"variant B (canary revision {canary})"
    if variant == "A":
        raise PluginError(f"A is the stable revision: `kubectl tritonop abort {meta['name']}` picks A")
    arm = next((a for a in arms if a.get("name") == variant), None)
    if arm is None:
        raise PluginError(f'{where} has no variant "{variant}" to pick (one of: {choices})')
    if arm.get("stopped"):
        raise PluginError(f'variant "{variant}" cannot be picked: {render.stopped(arm)} (one of: {choices})')
    revision = str(arm["revision"])
    later = "; it acts once the variant has weight and ready pods" if not arm.get("weight") else ""
    return revision, f"variant {variant} (revision {revision}){later}"


def manual(
    api: Api,
    namespace: str,
    name: str,
    action: str,
    out: TextIO,
    *,
    variant: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Set the annotation the operator reads, naming the canary revision from status. One left
    over from an earlier canary of the same revision is ignored as stale until removed: then
    it is removed first, and set again once the operator has seen it gone. ``variant``: an
    Experiment's pick, promoted by name (variant_of); a variant beyond B is not checked for
    staleness (the operator does not either)."""
    key = PROMOTE_ANNOTATION if action == "promote" else ABORT_ANNOTATION
    obj = api.isvc(namespace, name)
    if variant is None:
        canary = canary_of(obj, action)
        what = f"version {canary[1:]} (in place)" if canary.startswith("v") else f"canary revision {canary}"
    else:
        canary, what = variant_of(obj, variant)
        if variant != "B":
            api.patch(namespace, name, {"metadata": {"annotations": {key: canary}}})
            print(f'inferenceservice "{name}" {action} requested for {what}', file=out)
            return 0
    if action in _ignored(obj):
        api.patch(namespace, name, {"metadata": {"annotations": {key: None}}})
        deadline = time.monotonic() + STALE_WAIT_S
        while action in _ignored(api.isvc(namespace, name)):
            if time.monotonic() > deadline:
                raise PluginError(
                    f"the operator did not notice the stale {key} annotation's removal within {STALE_WAIT_S:g}s"
                )
            sleep(0.5)
    api.patch(namespace, name, {"metadata": {"annotations": {key: canary}}})
    print(f'inferenceservice "{name}" {action} requested for {what}', file=out)
    return 0


def _ignored(obj: dict[str, Any]) -> list[str]:
    """Stale annotations the operator reports, for the canary or the in-place switch that runs."""
    status = obj.get("status") or {}
    progress = status.get("canary") if status.get("canaryRevision") else (status.get("inPlace") or {}).get("canary")
    return list((progress or {}).get("ignoredAnnotations") or [])


def cmd_promote(api: Api, args: argparse.Namespace, namespace: str, out: TextIO) -> int:
    return manual(api, namespace, args.name, "promote", out, variant=args.variant)


def cmd_abort(api: Api, args: argparse.Namespace, namespace: str, out: TextIO) -> int:
    return manual(api, namespace, args.name, "abort", out)


def set_paused(api: Api, namespace: str, name: str, paused: bool, out: TextIO) -> int:
    obj = api.isvc(namespace, name)
    now = bool(((obj.get("spec") or {}).get("rollout") or {}).get("paused"))
    word = "paused" if paused else "resumed"
    if now == paused:
        print(f'inferenceservice "{name}" already {"paused" if paused else "not paused"}', file=out)
        return 0
    api.patch(namespace, name, {"spec": {"rollout": {"paused": paused}}})
    canary = (obj.get("status") or {}).get("canaryRevision")
    tail = f" (canary {canary})" if canary else " (no canary now: it holds the next one)" if paused else ""
    print(f'inferenceservice "{name}" {word}{tail}', file=out)
    return 0


def cmd_pause(api: Api, args: argparse.Namespace, namespace: str, out: TextIO) -> int:
    return set_paused(api, namespace, args.name, True, out)


def cmd_resume(api: Api, args: argparse.Namespace, namespace: str, out: TextIO) -> int:
    return set_paused(api, namespace, args.name, False, out)


COMMANDS: dict[str, Callable[[Api, argparse.Namespace, str, TextIO], int]] = {
    "list": cmd_list,
    "get": cmd_get,
    "history": cmd_history,
    "watch": cmd_watch,
    "promote": cmd_promote,
    "abort": cmd_abort,
    "pause": cmd_pause,
    "resume": cmd_resume,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
