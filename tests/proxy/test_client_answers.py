"""The client trusts no answer: a proxy that answers outside the protocol raises ProxyError('bad_answer'), one
that cannot be reached raises ProxyUnavailable. The misbehaving proxies here are real HTTP servers."""
import asyncio
import json
import socket

import numpy as np
import pyarrow as pa
import pytest
from eth_account import Account
from fastapi import FastAPI, Request
from fastapi.responses import Response
from proxy_builders import plain_policy

from orchestrator.auth.messages import HolderAnswer, body_digest
from orchestrator.auth.signing import ANSWER_SIGNATURE_HEADER, NONCE_HEADER
from orchestrator.container.split import SubModel
from orchestrator.errors import ProxyError, ProxyUnavailable
from orchestrator.proxy.bodies import ARROW
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.columnar import CONTROL_KEY, categories, encode, is_stream

SUBS = [SubModel(j, ("a", "b"), (1.0, -1.0), 0.0) for j in range(3)]
HASH = "0x" + "ab" * 32


def asked_model(body: bytes) -> int:
    """The model id a request names, JSON or binary (the client sends binary bodies by default)."""
    if is_stream(body):
        return json.loads(pa.ipc.open_stream(body).schema.metadata[CONTROL_KEY])["model_id"]
    return json.loads(body)["model_id"]


def liar(answers: dict[str, tuple[int, str]], domain, account, *, delay: float = 0.0) -> FastAPI:
    """A proxy answering every path with a canned status and body, whatever was asked, and signing its
    answers with its own key as an honest proxy does: a liar that holds a key, so the client's checks of
    what it says are what is tested, not its signature."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def answer(path: str, request: Request) -> Response:
        await asyncio.sleep(delay)
        status, text = answers["/" + path]
        data = text if isinstance(text, bytes) else text.encode()  # bytes: a binary body
        headers = {}
        if request.method == "POST":
            asked = await request.body()
            message = HolderAnswer(account.address, asked_model(asked), path.split("/")[-1],
                                   bytes.fromhex(request.headers[NONCE_HEADER][2:]), body_digest(asked),
                                   body_digest(data))
            signature = Account.sign_message(message.signable(domain), account.key).signature
            headers[ANSWER_SIGNATURE_HEADER] = "0x" + bytes(signature).hex()
        media = ARROW if isinstance(text, bytes) else "application/json"
        return Response(data, status_code=status, media_type=media, headers=headers)

    return app


@pytest.fixture
def lying(serve, onchain):
    """lying(answers, delay=0, timeout=30) -> a client of a liar serving `answers`."""

    def start(answers, *, delay: float = 0.0, timeout: float = 30.0):
        account = Account.create()
        return serve(app=liar(answers, onchain.domain, account, delay=delay), holder=account.address, timeout=timeout)

    return start


def evaluate_answer(z, labels) -> dict[str, tuple[int, str]]:
    return {"/v1/evaluate": (200, json.dumps({"z": z, "labels": labels}) if not isinstance(z, str) else z)}


def bad_answer(excinfo) -> str:
    assert excinfo.value.code == "bad_answer", excinfo.value
    return excinfo.value.detail


@pytest.mark.parametrize(
    "z, labels, complaint",
    [
        ([[0.1, 0.2, 0.3]], [1.0, 0.0], "z has shape (1, 3), expected 2 x 3"),
        ([[0.1, 0.2], [0.3, 0.4]], [1.0, 0.0], "z has shape (2, 2), expected 2 x 3"),
        ([[0.1, 0.2, 0.3], [0.4, 0.5]], [1.0, 0.0], "not a rectangular array"),
        ([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], [1.0], "labels has shape (1,), expected 2"),
        ([[0.1, "0.2", 0.3], [0.4, 0.5, 0.6]], [1.0, 0.0], "z.0.1"),
        ([[0.1, None, 0.3], [0.4, 0.5, 0.6]], [1.0, 0.0], "z.0.1"),
        ([[0.1, True, 0.3], [0.4, 0.5, 0.6]], [1.0, 0.0], "z.0.1"),
    ],
    ids=["too-few-rows", "too-few-columns", "ragged", "labels-too-short", "string", "null", "bool"],
)
def test_evaluate_answers_of_the_wrong_shape_or_type_are_bad_answers(lying, z, labels, complaint):
    proxy = lying(evaluate_answer(z, labels))
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5, 6], SUBS)
    assert complaint in bad_answer(caught)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999", "-1e999"])
def test_evaluate_answers_with_non_finite_numbers_are_bad_answers(lying, number):
    body = '{"z": [[0.1, 0.2, 0.3], [0.4, ' + number + ', 0.6]], "labels": [1.0, 0.0]}'
    proxy = lying({"/v1/evaluate": (200, body)})
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5, 6], SUBS)
    assert "z.1.1" in bad_answer(caught)


def test_an_answer_that_is_not_json_is_a_bad_answer(lying):
    proxy = lying({"/v1/evaluate": (200, "<html>hello</html>")})
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5, 6], SUBS)
    bad_answer(caught)


def test_a_gradient_with_the_wrong_number_of_model_inputs_is_a_bad_answer(lying, table):
    inputs = len(table.model_inputs)
    answers = {
        "/v1/quote": (200, json.dumps({"accepted": [{"row_id": 5, "row_hash": HASH, "source": "0x"}], "declined": []})),
        "/v1/gradient": (200, json.dumps({"weight": [[0.0] * (inputs - 1)] * 3, "bias": [0.0] * 3})),
    }
    proxy = lying(answers)
    proxy.quote(1, 1, table, [5], plain_policy(table))
    with pytest.raises(ProxyError) as caught:
        proxy.gradient(1, [5], np.zeros((1, 3), np.float32))
    assert f"weight has shape (3, {inputs - 1}), expected 3 x {inputs}" in bad_answer(caught)


def test_a_gradient_with_the_wrong_number_of_neurons_is_a_bad_answer(lying):
    answers = {"/v1/gradient": (200, json.dumps({"weight": [[0.0] * 4] * 2, "bias": [0.0] * 3}))}
    proxy = lying(answers)
    with pytest.raises(ProxyError) as caught:
        proxy.gradient(1, [5], np.zeros((1, 3), np.float32))
    assert "weight has shape (2, 4), expected 3 x ?" in bad_answer(caught)


@pytest.mark.parametrize("withheld", [[6], [5, 5]])
def test_a_gradient_withholding_rows_not_asked_for_or_twice_is_a_bad_answer(lying, withheld):
    answer = {"weight": [[0.0] * 4] * 3, "bias": [0.0] * 3, "withheld": withheld}
    proxy = lying({"/v1/gradient": (200, json.dumps(answer))})
    with pytest.raises(ProxyError) as caught:
        proxy.gradient(1, [5], np.zeros((1, 3), np.float32))
    assert "withheld names rows not asked for" in bad_answer(caught)


@pytest.mark.parametrize(
    "answer",
    [
        {"accepted": [{"row_id": 5, "row_hash": HASH, "source": "0x"}], "declined": []},
        {"accepted": [{"row_id": r, "row_hash": HASH, "source": "0x"} for r in (5, 6, 7)], "declined": []},
        {"accepted": [{"row_id": 5, "row_hash": HASH, "source": "0x"}], "declined": [{"row_id": 5, "reason": "price"}]},
        {"accepted": [{"row_id": 5, "row_hash": "0x1234", "source": "0x"}], "declined": [{"row_id": 6, "reason": "price"}]},
        {"accepted": [], "declined": [{"row_id": 5, "reason": "price"}, {"row_id": 6, "reason": "mood"}]},
    ],
    ids=["omits-a-row", "answers-a-row-not-asked", "answers-a-row-twice", "short-hash", "unknown-reason"],
)
def test_a_quote_answer_must_answer_each_row_asked_once(lying, table, answer):
    proxy = lying({"/v1/quote": (200, json.dumps(answer))})
    with pytest.raises(ProxyError) as caught:
        proxy.quote(1, 1, table, [5, 6], plain_policy(table))
    bad_answer(caught)


def test_listings_that_do_not_increase_past_after_are_bad_answers(lying):
    listings = [{"row_id": r, "fields": ["a"], "source": "0x"} for r in (3, 2)]
    proxy = lying({"/v1/listings": (200, json.dumps({"listings": listings, "next_after": 2}))})
    with pytest.raises(ProxyError) as caught:
        proxy.listings(after=1)
    bad_answer(caught)


def test_a_refusal_carries_the_url_status_code_and_detail(lying):
    body = json.dumps({"error": "rows_not_quoted", "detail": "rows 5 are not covered"})
    proxy = lying({"/v1/evaluate": (409, body)})
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5], SUBS)
    error = caught.value
    assert (error.url, error.status, error.code, error.detail) == (proxy.url, 409, "rows_not_quoted", "rows 5 are not covered")


def test_an_error_without_the_protocols_error_document_is_still_a_proxy_error(lying):
    proxy = lying({"/v1/evaluate": (500, "Internal Server Error")})
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5], SUBS)
    assert (caught.value.status, caught.value.code) == (500, "http_error")
    assert not isinstance(caught.value, ProxyUnavailable)


def test_a_gateway_error_means_the_proxy_is_unavailable(lying):
    proxy = lying({"/v1/evaluate": (503, "busy")})
    with pytest.raises(ProxyUnavailable) as caught:
        proxy.evaluate(1, [5], SUBS)
    assert caught.value.status == 503


def test_a_proxy_that_is_down_raises_proxy_unavailable(onchain):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    client = ProxyClient(f"http://127.0.0.1:{port}", signer=onchain.host_signer, holder=Account.create().address)
    with client as proxy, pytest.raises(ProxyUnavailable) as caught:
        proxy.evaluate(1, [5], SUBS)
    assert caught.value.code == "unavailable" and caught.value.url == f"http://127.0.0.1:{port}"


def test_a_proxy_that_does_not_answer_in_time_raises_proxy_unavailable(lying):
    proxy = lying(evaluate_answer([[0.0] * 3], [0.0]), delay=0.8, timeout=0.2)
    with pytest.raises(ProxyUnavailable, match="timed out"):
        proxy.evaluate(1, [5], SUBS)


def test_an_answer_without_the_proxys_signature_is_a_bad_answer(serve, onchain):
    app = liar(evaluate_answer([[0.0] * 3], [0.0]), onchain.domain, Account.create())
    proxy = serve(app=app, holder=Account.create().address)  # the answer is signed, but by another key
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5], SUBS)
    assert "not signed by the proxy's address" in bad_answer(caught)


def arrow_quote(ids, hashes, reasons) -> bytes:
    """A binary quote answer as a liar writes it: one row per entry, a hash or a reason each."""
    return encode({}, {"row_id": np.asarray(ids, np.int64),
                       "row_hash": pa.array(hashes, type=pa.binary(32)),
                       "source": categories([None if h is None else "0x" for h in hashes]),
                       "reason": categories(reasons)})


H = b"\xab" * 32


@pytest.mark.parametrize(
    "answer, complaint",
    [
        (arrow_quote([5], [H], [None]), "exactly once"),
        (arrow_quote([5, 5], [H, H], [None, None]), "exactly once"),
        (arrow_quote([6, 5], [H, None], [None, "price"]), "in the order asked"),
        (arrow_quote([5, 6, 7], [H, H, H], [None] * 3), "3 rows in one body; at most 2"),
        (arrow_quote([5, 6], [H, H], [None, "price"]), "not both"),
        (arrow_quote([5, 6], [H, None], [None, "mood"]), "unknown decline reason"),
    ],
    ids=["omits-a-row", "repeats-a-row", "out-of-order", "answers-a-row-not-asked", "both", "unknown-reason"],
)
def test_a_binary_quote_answer_must_answer_each_row_asked_once(lying, table, answer, complaint):
    proxy = lying({"/v1/quote": (200, answer)})
    with pytest.raises(ProxyError) as caught:
        proxy.quote(1, 1, table, [5, 6], plain_policy(table))
    assert complaint in bad_answer(caught)


@pytest.mark.parametrize(
    "z, labels, complaint",
    [
        (np.zeros((1, 3)), np.zeros(1), "1 rows answered for 2 asked"),
        (np.zeros((3, 3)), np.zeros(3), "3 rows in one body; at most 2"),
        (np.zeros((2, 2)), np.zeros(2), "must hold 3 values per row, not 2"),
        (np.array([[0.1, np.nan, 0.3], [0.4, 0.5, 0.6]]), np.zeros(2), "non-finite"),
        (np.zeros((2, 3)), np.array([1.0, np.inf]), "non-finite"),
        (np.zeros((2, 3), np.int64), np.zeros(2), "must be a fixed-size list of float32 or float64"),
    ],
    ids=["too-few-rows", "too-many-rows", "too-few-columns", "nan", "infinite-label", "integers"],
)
def test_binary_evaluate_answers_of_the_wrong_shape_type_or_with_nans_are_bad_answers(lying, z, labels, complaint):
    if z.dtype.kind == "i":  # the codec writes only float matrices: build the integer one by hand
        z = pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1)), 3)
    body = encode({}, {"z": z, "label": labels}) if not isinstance(z, np.ndarray) or z.dtype.kind == "f" else None
    proxy = lying({"/v1/evaluate": (200, body)})
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5, 6], SUBS)
    assert complaint in bad_answer(caught)


def test_a_truncated_binary_answer_is_a_bad_answer(lying):
    body = encode({}, {"z": np.zeros((2, 3)), "label": np.zeros(2)})
    proxy = lying({"/v1/evaluate": (200, body[:-20])})
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(1, [5, 6], SUBS)
    assert "not a complete Arrow IPC stream" in bad_answer(caught)


def test_binary_listings_that_do_not_increase_past_after_are_bad_answers(lying):
    body = encode({"next_after": 2}, {"row_id": np.array([3, 2]), "source": categories(["0x", "0x"]),
                                      "fields": categories(["a", "a"])})
    proxy = lying({"/v1/listings": (200, body)})
    with pytest.raises(ProxyError) as caught:
        proxy.listings(after=1)
    assert "must be increasing ids above it" in bad_answer(caught)


def test_a_binary_gradient_with_the_wrong_number_of_neurons_is_a_bad_answer(lying):
    body = encode({}, {"weight": np.zeros((2, 4)), "bias": np.zeros(2)})
    proxy = lying({"/v1/gradient": (200, body)})
    with pytest.raises(ProxyError) as caught:
        proxy.gradient(1, [5], np.zeros((1, 3), np.float32))
    assert "weight and bias have 2 rows (neurons), expected 3" in bad_answer(caught)
