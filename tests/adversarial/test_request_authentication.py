"""Who may ask a proxy what: every row-revealing request must be signed by the model's registered hosting node
for this proxy, once, before it expires; uploads by the payout address they name. Each attack runs against a
real proxy process over HTTP on the test chain and leaves the proxy's rows and quotes as they were."""
import json
import time
from dataclasses import dataclass

import brownie
import httpx
import numpy as np
import pytest
from eth_account import Account
from proxy_builders import PRICE, SOURCE_A_KEY, SOURCE_B_KEY, projection_policy_for, source_mapping, source_rows

from orchestrator.auth.messages import Domain
from orchestrator.auth.signing import IDEMPOTENCY_HEADER, RequestSigner
from orchestrator.chain.client import MarketClient, connect
from orchestrator.chain.deployment import save_deployment
from orchestrator.errors import ProxyError
from orchestrator.hashing.keccak import keccak256
from orchestrator.proxy import wire
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.documents import quote_document
from orchestrator.proxy.server import proxy_process

ROWS = range(150, 250)
GAS = 10**18


@dataclass
class World:
    """One proxy process holding source A's rows, and a model registered for the honest hosting node. Made once
    for the module, before any test's chain snapshot, so every test sees the same registrations."""

    proxy: ProxyClient  # signing as the hosting node
    url: str
    domain: Domain
    model_id: int
    host: RequestSigner
    stranger: RequestSigner
    table: object
    policy: object
    row_ids: list[int]
    proxy_address: str
    chain: MarketClient
    rows_before: int = 0


@pytest.fixture(scope="module")
def world(deployed, accounts, columns, table, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("adversarial")
    deployment = deployed[2]
    save_deployment(deployment, workdir / "deployment.json")
    rpc = brownie.web3.provider.endpoint_uri
    chain = MarketClient(connect(rpc), deployment)
    funded = {}
    for role in ("owner", "host", "stranger", "proxy"):
        funded[role] = Account.create()
        accounts[0].transfer(funded[role].address, GAS)
    domain = chain.domain()
    policy = projection_policy_for(table, columns)
    owner = chain.with_account(funded["owner"])
    model_id, _ = owner.register_model(funded["host"].address, keccak256(b"model"), keccak256(b"test set"),
                                       table.commitment(), policy.commitment(), keccak256(b"weights"), 0)
    host = RequestSigner(funded["host"], domain)
    args = ["--rpc", rpc, "--deployment", str(workdir / "deployment.json"), "--key-env", "SPLITLEDGER_PROXY_KEY"]
    with proxy_process(str(workdir / "proxy.sqlite"), name="proxy", args=args, signer=host,
                       env={"SPLITLEDGER_PROXY_KEY": funded["proxy"].key.hex()}) as proxy:
        ids = proxy.upload(RequestSigner(SOURCE_A_KEY, domain), PRICE, source_mapping(columns),
                           source_rows(columns, ROWS), ["Patient"]).row_ids
        proxy.quote(model_id, PRICE, table, ids, policy)
        yield World(proxy, proxy.url, domain, model_id, host, RequestSigner(funded["stranger"], domain), table,
                    policy, list(ids), funded["proxy"].address, chain)


def client(world, signer, **options) -> ProxyClient:
    return ProxyClient(world.url, signer=signer, **options)


def refusal(call) -> tuple[int, str]:
    with pytest.raises(ProxyError) as caught:
        call()
    return caught.value.status, caught.value.code


def quote_body(world, price=PRICE, model_id=None) -> bytes:
    return wire.dumps(quote_document(world.model_id if model_id is None else model_id, price, world.table,
                                     world.row_ids, world.policy))


def post(world, path, body, headers) -> httpx.Response:
    return httpx.post(f"{world.url}{path}", content=body, headers={"content-type": "application/json", **headers})


@pytest.fixture(autouse=True)
def rows_before(world):
    """The rows the proxy holds as a test starts (the upload tests add some on purpose)."""
    world.rows_before = world.proxy.health()


def unchanged(world):
    """The proxy holds the rows it held before the attack, source A's all still sold to the model."""
    assert world.proxy.health() == world.rows_before
    answer = world.proxy.quote(world.model_id, PRICE, world.table, world.row_ids, world.policy)
    assert len(answer.accepted) == len(ROWS) and answer.declined == ()


def test_an_unsigned_quote_is_refused_401_unsigned(world):
    answer = post(world, "/v1/quote", quote_body(world), {})
    assert (answer.status_code, answer.json()["error"]) == (401, "unsigned")
    unchanged(world)


@pytest.mark.parametrize("path", ["/v1/evaluate", "/v1/gradient"])
def test_unsigned_evaluate_and_gradient_are_refused_401_unsigned(world, path):
    body = wire.dumps({"model_id": world.model_id, "row_ids": world.row_ids[:2],
                       **({"submodels": []} if path.endswith("evaluate") else {"dz": [[0.0], [0.0]]})})
    answer = post(world, path, body, {})
    assert (answer.status_code, answer.json()["error"]) == (401, "unsigned")


def test_a_quote_signed_by_someone_other_than_the_hosting_node_is_refused_403(world):
    with client(world, world.stranger) as stranger:
        assert refusal(lambda: stranger.quote(world.model_id, PRICE, world.table, world.row_ids,
                                              world.policy)) == (403, "not_hosting_node")
    unchanged(world)


def test_a_stranger_cannot_wipe_the_hosts_acceptances_by_quoting_at_price_zero(world):
    with client(world, world.stranger) as stranger:
        assert refusal(lambda: stranger.quote(world.model_id, 0, world.table, world.row_ids,
                                              world.policy)) == (403, "not_hosting_node")
    # The host's evaluate still finds every row quoted: nothing was wiped.
    out = world.proxy.evaluate(world.model_id, world.row_ids, projection_submodels(world))
    assert out.z.shape == (len(ROWS), len(world.policy.projection))


def test_a_quote_for_a_model_nobody_registered_is_refused_404(world):
    with client(world, world.stranger) as stranger:
        assert refusal(lambda: stranger.quote(10**9, PRICE, world.table, world.row_ids, world.policy)) == \
            (404, "unknown_model")
    unchanged(world)


def test_a_replayed_request_is_refused_409_replayed(world):
    body = quote_body(world)
    auth = world.host.request(world.proxy_address, world.model_id, "quote", body)
    first = post(world, "/v1/quote", body, auth.headers())
    again = post(world, "/v1/quote", body, auth.headers())
    assert first.status_code == 200
    assert (again.status_code, again.json()["error"]) == (409, "replayed")
    unchanged(world)


def test_an_expired_request_is_refused_401_expired(world):
    late = RequestSigner(world.host.account, world.domain, clock=lambda: time.time() - 3600)
    with client(world, late) as proxy:
        assert refusal(lambda: proxy.quote(world.model_id, PRICE, world.table, world.row_ids, world.policy)) == \
            (401, "expired")
    unchanged(world)


def test_a_request_asking_for_a_lifetime_beyond_the_holders_bound_is_refused(world):
    far = RequestSigner(world.host.account, world.domain, ttl=86_400)
    with client(world, far) as proxy:
        assert refusal(lambda: proxy.quote(world.model_id, PRICE, world.table, world.row_ids, world.policy)) == \
            (401, "expiry_too_far")


def test_a_request_signed_for_another_holder_is_refused(world):
    with client(world, world.host, holder=Account.create().address) as misdirected:
        assert refusal(lambda: misdirected.quote(world.model_id, PRICE, world.table, world.row_ids,
                                                 world.policy)) == (403, "not_hosting_node")
    unchanged(world)


def test_a_request_signed_for_another_chain_is_refused(world):
    elsewhere = RequestSigner(world.host.account, Domain(world.domain.chain_id + 1, world.domain.market))
    body = quote_body(world)
    auth = elsewhere.request(world.proxy_address, world.model_id, "quote", body)
    answer = post(world, "/v1/quote", body, auth.headers())
    assert (answer.status_code, answer.json()["error"]) == (403, "not_hosting_node")


def test_a_body_changed_after_it_was_signed_is_refused(world):
    auth = world.host.request(world.proxy_address, world.model_id, "quote", quote_body(world))
    answer = post(world, "/v1/quote", quote_body(world, price=0), auth.headers())
    assert (answer.status_code, answer.json()["error"]) == (403, "not_hosting_node")
    unchanged(world)


def test_a_malformed_signature_is_refused_401_bad_signature(world):
    body = quote_body(world)
    headers = world.host.request(world.proxy_address, world.model_id, "quote", body).headers()
    headers["X-SplitLedger-Signature"] = "0x" + "00" * 65
    answer = post(world, "/v1/quote", body, headers)
    assert (answer.status_code, answer.json()["error"]) == (401, "bad_signature")


def test_every_answer_is_signed_by_the_proxys_registered_address(world):
    out = world.proxy.evaluate(world.model_id, world.row_ids[:5], projection_submodels(world))
    assert out.evidence.signer(world.domain) == world.proxy_address
    assert world.chain.market.functions.isProxy(world.proxy_address).call()


def test_an_upload_under_another_sources_address_is_refused_403_not_source(world, columns):
    attacker = RequestSigner(Account.create(), world.domain)
    body = wire.dumps({"source": SOURCE_B_KEY.address, "min_price": 0, "mapping": source_mapping(columns),
                       "ignored": ["Patient"], "rows": source_rows(columns, range(1)), "hash_key": "0x" + "11" * 32})
    auth = attacker.upload(world.proxy_address, body, b"\x01" * 32)
    answer = post(world, "/v1/rows", body, auth.headers(IDEMPOTENCY_HEADER))
    assert (answer.status_code, answer.json()["error"]) == (403, "not_source")
    unchanged(world)
    # The victim's own first upload still fixes its own row-hash key.
    victim = RequestSigner(SOURCE_B_KEY, world.domain)
    stored = world.proxy.upload(victim, PRICE, source_mapping(columns), source_rows(columns, range(1)), ["Patient"],
                                hash_key=b"\x22" * 32)
    assert len(stored.row_ids) == 1


def test_the_same_upload_sent_twice_is_stored_once(world, columns):
    source = RequestSigner(SOURCE_A_KEY, world.domain)
    before = world.proxy.health()
    rows = source_rows(columns, range(300, 303))
    first = world.proxy.upload(source, PRICE, source_mapping(columns), rows, ["Patient"], idempotency_key=b"\x07" * 32)
    again = world.proxy.upload(source, PRICE, source_mapping(columns), rows, ["Patient"], idempotency_key=b"\x07" * 32)
    assert first.row_ids == again.row_ids and world.proxy.health() == before + 3


def test_an_idempotency_key_reused_for_other_rows_is_refused_409(world, columns):
    source = RequestSigner(SOURCE_A_KEY, world.domain)
    world.proxy.upload(source, PRICE, source_mapping(columns), source_rows(columns, range(310, 311)), ["Patient"],
                       idempotency_key=b"\x08" * 32)
    before = world.proxy.health()
    assert refusal(lambda: world.proxy.upload(source, PRICE, source_mapping(columns),
                                              source_rows(columns, range(311, 312)), ["Patient"],
                                              idempotency_key=b"\x08" * 32)) == (409, "idempotency_conflict")
    assert world.proxy.health() == before


def test_a_holder_without_chain_access_serves_no_rows(serve, columns, table):
    from orchestrator.proxy.store import Store
    from orchestrator.proxy.vault import Vault

    proxy = serve(Vault(Store(":memory:")), gated=False)
    answer = httpx.post(f"{proxy.url}/v1/quote", content=b"{}", headers={"content-type": "application/json"})
    assert answer.status_code in (401, 422)  # malformed or unsigned: refused before anything else
    health = httpx.get(f"{proxy.url}/v1/health").json()
    assert "holder" not in health or health["holder"] is None
    body = wire.dumps(quote_document(1, PRICE, table, [1], projection_policy_for(table, columns)))
    signed = RequestSigner(Account.create(), Domain(1, "0x" + "00" * 20)).request(Account.create().address, 1,
                                                                                   "quote", body)
    answer = httpx.post(f"{proxy.url}/v1/quote", content=body,
                        headers={"content-type": "application/json", **signed.headers()})
    assert (answer.status_code, answer.json()["error"]) == (503, "chain_unavailable")


def test_a_proxy_whose_chain_is_unreachable_refuses_to_start(tmp_path, deployed):
    import subprocess
    import sys

    save_deployment(deployed[2], tmp_path / "deployment.json")
    result = subprocess.run([sys.executable, "-m", "orchestrator.proxy", "--db", str(tmp_path / "p.sqlite"),
                             "--port", "1", "--rpc", "http://127.0.0.1:9", "--deployment",
                             str(tmp_path / "deployment.json"), "--key-env", "SPLITLEDGER_PROXY_KEY"],
                            env={"SPLITLEDGER_PROXY_KEY": Account.create().key.hex(), "PATH": ""},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "cannot reach the chain" in result.stderr


def projection_submodels(world):
    from orchestrator.container.split import SubModel

    inputs = world.policy.inputs
    return [SubModel(j, inputs, tuple(row), 0.0) for j, row in enumerate(np.asarray(world.policy.projection).tolist())]


def test_an_oversized_body_is_refused_413_before_it_is_read(world):
    body = b'{"model_id": 1, "row_ids": [' + b"1," * (20 * 2**20) + b"1]}"  # 40 MiB, over the 32 MiB default
    answer = httpx.post(f"{world.url}/v1/quote", content=body, headers={"content-type": "application/json"},
                        timeout=60)
    assert (answer.status_code, answer.json()["error"]) == (413, "too_large")
    unchanged(world)


@pytest.mark.parametrize("row_id", [2**63, 2**256], ids=["2^63", "2^256"])
@pytest.mark.parametrize("operation", ["quote", "evaluate", "gradient"])
def test_row_ids_beyond_the_declared_range_are_refused_422_by_a_signed_request_too(world, row_id, operation):
    document = {
        "quote": lambda: {**json.loads(quote_body(world)), "row_ids": [row_id]},
        "evaluate": lambda: {"model_id": world.model_id, "row_ids": [row_id],
                             "submodels": [s.to_dict() for s in projection_submodels(world)]},
        "gradient": lambda: {"model_id": world.model_id, "row_ids": [row_id], "dz": [[0.0] * 8]},
    }[operation]()
    body = json.dumps(document).encode()
    auth = world.host.request(world.proxy_address, world.model_id, operation, body)
    answer = post(world, f"/v1/{operation}", body, auth.headers())
    assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request")
    unchanged(world)
