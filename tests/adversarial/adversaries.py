"""What the attackers in these tests send and record: several models over the same rows, each within its own
policy, and the hosting node's view of what came back (orchestrator.privacy.attack's HostView)."""
import numpy as np
from proxy_builders import PRICE, REFERENCE_ROWS, normalised

from orchestrator.container.split import SubModel
from orchestrator.privacy.attack import Forward, HostView, attack
from orchestrator.privacy.policy import default_policy, projection_policy, review
from orchestrator.privacy.projection import verify_projection
from orchestrator.privacy.span import moments

HOLDER_ROWS = range(150, 569)  # every breast-cancer row the owner's reference set does not use
FIRST_MODEL = 100


def requests_of(policy):
    """What the hosting node sends in projection mode: P's rows, zero biases."""
    return [SubModel(j, policy.inputs, row, 0.0) for j, row in enumerate(policy.projection)]


def passes_alone(policy, table, columns) -> bool:
    """Would the per-model review (the only check before this budget) let the policy through on the holder's rows?"""
    rows = normalised(table, columns, HOLDER_ROWS)
    return review(policy, moments(rows.features, rows.labels)).allowed


def orthonormal_slices(table, columns, *, width=6):
    """n / width policies whose projections are disjoint row blocks of one random orthonormal basis of R^n, each
    passing the per-model review on the holder's rows: together they span everything. The first seed whose
    slices all pass alone is taken (that is the attacker's premise, asserted by the tests)."""
    n = len(table.model_inputs)
    for seed in range(50):
        q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
        blocks = [q[k:k + width].astype(np.float32).astype(np.float64) for k in range(0, n, width)]
        if not all(verify_projection(b).ok for b in blocks):
            continue
        policies = [projection_policy(table.model_inputs, b) for b in blocks]
        if all(passes_alone(p, table, columns) for p in policies):
            return policies
    raise AssertionError("no seed gives slices that each pass the per-model review")


def honest_defaults(table, columns, seeds=range(5)):
    """The default policy an owner registers, under five seeds (five honest-looking models)."""
    reference = normalised(table, columns, REFERENCE_ROWS)
    return [default_policy(table.model_inputs, reference.features, reference.labels, seed) for seed in seeds]


def run_models(vault, table, ids, policies):
    """Registers one model per policy (quote, then the projection request on every accepted row), as an
    attacker would. Returns (the quote answers, the forwards the host recorded, in positions of `ids`)."""
    position = {row: i for i, row in enumerate(ids)}
    answers, forwards = [], []
    for k, policy in enumerate(policies):
        answer = vault.quote(FIRST_MODEL + k, PRICE, table, ids, policy)
        answers.append(answer)
        sold = [a.row_id for a in answer.accepted]
        if sold:
            u = vault.evaluate(FIRST_MODEL + k, sold, requests_of(policy)).z
            forwards.append(Forward(np.asarray([position[r] for r in sold]), policy.matrix, np.asarray(u, np.float64)))
    return answers, forwards


def host_attack(forwards, table, columns):
    """The host's best reconstruction (algebraic and learned on its own reference rows, with the labels) of the
    holder's rows from what it recorded: R^2 per model input."""
    truth = normalised(table, columns, HOLDER_ROWS)
    aux = normalised(table, columns, REFERENCE_ROWS)
    view = HostView(len(truth), truth.features.shape[1], tuple(forwards), labels=truth.labels)
    return attack(view, truth.features, aux=(aux.features, aux.labels)).best


def declined_for(answers, reason):
    return [k for k, answer in enumerate(answers) if any(d.reason == reason for d in answer.declined)]
