"""Triton gates: is a revision's Triton serving the model, does it answer correctly, what is it."""

from tritonop.triton.client import client_target, triton_client
from tritonop.triton.gates import check_readiness, model_facts, run_acceptance, served_models
from tritonop.triton.results import AcceptanceResult, CaseResult, Readiness, Reason

__all__ = [
    "AcceptanceResult",
    "CaseResult",
    "Readiness",
    "Reason",
    "check_readiness",
    "client_target",
    "model_facts",
    "run_acceptance",
    "served_models",
    "triton_client",
]
