"""KEDA trigger queries and analysis queries quote label values with one helper, the same way."""

from __future__ import annotations

import promql_parser
import pytest

from tritonop.analysis import promql
from tritonop.children import IsvcRef
from tritonop.children.autoscaling import build_autoscaler, revision_selector
from tritonop.config import OperatorConfig

CONFIG = OperatorConfig()
HOSTILE = ['quo"te', "back\\slash", 'both\\"', 'x",evil="1']


def matchers_of(query: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append({m.name: m.value for m in node.matchers.matchers})

    promql_parser.walk(promql_parser.parse(query), pre_visit=visit)
    return found


@pytest.mark.parametrize("value", HOSTILE)
def test_keda_selector_escapes_like_the_analysis_queries(value: str) -> None:
    ref = IsvcRef(name=value, namespace=value, uid="5f0c6b1e-0000-4000-8000-000000000001")
    series = promql.RevisionSeries(namespace=value, name=value, revision=value, model="m")

    keda = revision_selector(ref, value, CONFIG)

    assert promql.matchers(series, CONFIG) == f"{keda},model={promql.quote('m')}"
    assert keda == promql.label_matchers(
        [(CONFIG.label_namespace, value), (CONFIG.label_isvc, value), (CONFIG.label_revision, value)]
    )


def test_quote_escapes_backslash_before_quote() -> None:
    assert promql.quote('a"b\\c') == '"a\\"b\\\\c"'
    assert promql.label_matchers([("model", 'a"b\\c')]) == 'model="a\\"b\\\\c"'


@pytest.mark.parametrize("value", HOSTILE)
def test_keda_trigger_queries_parse_back_to_the_raw_values(value: str, make_spec) -> None:
    ref = IsvcRef(name="resnet", namespace="ml", uid="5f0c6b1e-0000-4000-8000-000000000001")
    spec = make_spec(autoscaling={"engine": "keda", "maxReplicas": 3, "gpuUtilization": 60, "queueTimeMs": 20})

    scaled = build_autoscaler(ref, spec, value, CONFIG)

    queries = [t["metadata"]["query"] for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    assert len(queries) == 2
    for query in queries:
        for selector in matchers_of(query):
            assert selector[CONFIG.label_revision] == value
            assert set(selector) == {CONFIG.label_namespace, CONFIG.label_isvc, CONFIG.label_revision}
