"""The market on chain, through web3.py with local signing.

Every state-changing call is simulated first (eth_estimateGas), so a revert surfaces before anything is
sent, as a `ChainRevert` naming the contract's custom error and its arguments (web3.py decodes no custom
errors: ErrorDecoder does); then it is priced (fees.py: EIP-1559 where the chain has a base fee), signed
locally with eth-account, sent raw, and waited for until it is `confirmations` blocks deep (confirmations.py).
Structs and events are decoded by web3.py from the ABI. Nonces are tracked locally, since a hosting node sends
many transactions back to back and asking the node for each would cost a round trip.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from orchestrator.auth.messages import Domain
from orchestrator.errors import ChainError, ChainRevert

from .confirmations import default_depth, receipt_or_none
from .deployment import Deployment
from .devnet import is_dev_chain
from .sending import send_transaction

if TYPE_CHECKING:  # the record only: the client never loads ezkl or onnx
    from orchestrator.zk.evm import AccuracyProof

CHECKPOINT_STATES = {0: "none", 1: "open", 2: "billed", 3: "settled", 4: "rolled_back"}
# Simulated gas plus a margin, because state read during simulation can change before inclusion.
GAS_MARGIN = 1.25
# How often receipts and blocks are polled: a local chain mines at once, a live one every few seconds.
DEV_POLL_SECONDS, LIVE_POLL_SECONDS = 0.01, 1.0


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def event(self, name: str) -> dict[str, Any]:
        """The arguments of the single `name` event this transaction emitted."""
        found = self.events.get(name, [])
        if len(found) != 1:
            raise ChainError(f"transaction {self.tx_hash} emitted {len(found)} {name} events, expected one")
        return found[0]


@dataclass(frozen=True)
class VerifiedTerms:
    """SplitLedgerMarket's `VerifiedTerms` of a verified model (docs/zk.md, "Verified mode"): the verifier, the
    circuit's VKA digest, the test set's chunk-commitment root and the Poseidon weights commitment (the
    registered initial one, then each verified settle's)."""
    verifier: str
    vka_digest: bytes
    test_set_zk_root: bytes
    weights_commitment: int

    def as_abi(self) -> tuple:
        return (to_checksum_address(self.verifier), self.vka_digest, self.test_set_zk_root, self.weights_commitment)


@dataclass(frozen=True)
class ProvenWeights:
    """A verified checkpoint's Poseidon commitments: the one it opened from, the one its close proved (0 if none)."""
    weights_commitment: int
    weights_commitment_after: int


@dataclass(frozen=True)
class ProvenClose:
    """A verified checkpoint's close as its transaction carried it (settleCheckpointVerified or
    rollbackCheckpointVerified): the proof in the ABI's field order (`evm.AccuracyProof.from_abi` reads it),
    so the owner can check the proofs the chain accepted without asking the hosting node for them."""
    tx_hash: bytes
    function: str
    accuracy_after: int
    weights_hash_after: bytes
    proof: tuple


VERIFIED_CLOSES = ("settleCheckpointVerified", "rollbackCheckpointVerified")


def connect(rpc_url: str, timeout: float = 30.0) -> Web3:
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        _ = w3.eth.chain_id  # the first request: it fails here if the chain cannot be reached
    except Exception as e:  # any transport failure: connection refused, DNS, timeout
        raise ChainError(f"cannot reach the chain at {rpc_url}: {e}") from None
    return w3


class ErrorDecoder:
    """Maps revert data to 'ErrorName(arg, ...)' with the project's ABIs (market, token, OpenZeppelin)."""

    def __init__(self, *abis: Sequence[Mapping[str, Any]]):
        self._by_selector: dict[bytes, tuple[str, list[str]]] = {}
        for abi in abis:
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                types = [_abi_type(i) for i in entry["inputs"]]
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                self._by_selector[selector] = (entry["name"], types)

    def decode(self, data: str | bytes | dict | None) -> tuple[str, tuple]:
        if isinstance(data, dict):
            # Ganache 7 reports a simulated revert as {"result": "0x<revert data>", "programCounter": ...}.
            data = data.get("result")
        if data is None:
            return "unknown", ()
        raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else bytes(data)
        if len(raw) < 4:
            return "unknown", ()
        found = self._by_selector.get(raw[:4])
        if found is None:
            return f"unknown error 0x{raw[:4].hex()}", ()
        name, types = found
        return name, tuple(abi_decode(types, raw[4:]))


def _abi_type(param: dict) -> str:
    if param["type"].startswith("tuple"):
        return f"({','.join(_abi_type(c) for c in param['components'])}){param['type'][5:]}"
    return param["type"]


class MarketClient:
    """Typed calls of SplitLedgerMarket (and the token's approve/balance) for one signer."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount | None = None,
                 poll_latency: float | None = None, track_nonce: bool = True, confirmations: int | None = None):
        """`confirmations`: blocks on top of a transaction's own before it counts as done (default: 0 on a
        development chain, confirmations.DEFAULT_LIVE_DEPTH elsewhere); `poll_latency`: seconds between
        receipt polls (default: by the same rule)."""
        if w3.eth.chain_id != deployment.chain_id:
            raise ChainError(
                f"the RPC endpoint is chain {w3.eth.chain_id}, the deployment file is for chain {deployment.chain_id}"
            )
        if confirmations is not None and confirmations < 0:
            raise ChainError(f"confirmations must be 0 or more, not {confirmations}")
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.market = w3.eth.contract(address=to_checksum_address(deployment.market),
                                      abi=deployment.abi("SplitLedgerMarket"), decode_tuples=True)
        self.token = w3.eth.contract(address=to_checksum_address(deployment.token),
                                     abi=deployment.abi("SplitLedgerToken"), decode_tuples=True)
        self._errors = ErrorDecoder(self.market.abi, self.token.abi)
        dev = is_dev_chain(deployment.chain_id)
        self._poll_latency = poll_latency if poll_latency is not None else (
            DEV_POLL_SECONDS if dev else LIVE_POLL_SECONDS)
        self.confirmations = confirmations if confirmations is not None else default_depth(deployment.chain_id)
        # A busy sender (the hosting node) counts its nonces itself; an occasional one (a proxy's listings)
        # asks the node every time, so a chain that restarted or was reverted never leaves it waiting on a
        # transaction with a nonce the chain will not reach.
        self._track_nonce = track_nonce
        self._nonce: int | None = None

    @property
    def address(self) -> ChecksumAddress:
        return self.signer.address

    @property
    def signer(self) -> LocalAccount:
        """The signing key; a read-only client (no key) refuses anything that would sign."""
        if self.account is None:
            raise ChainError("this client has no signing key; it can only read")
        return self.account

    def domain(self) -> Domain:
        """The EIP-712 domain of this chain and market: what requests to holders are signed for."""
        return Domain(self.deployment.chain_id, self.market.address)

    def with_account(self, account: LocalAccount) -> "MarketClient":
        return MarketClient(self.w3, self.deployment, account, self._poll_latency, self._track_nonce,
                            self.confirmations)

    def reset_nonce(self) -> None:
        """Asks the node for the next nonce before the next send: after a reorg dropped this sender's
        transactions, the locally counted one is ahead of the chain and would wait forever."""
        self._nonce = None

    # ------------------------------------------------------------------ sending

    def transact(self, contract, function: str, *args) -> TxResult:
        call = getattr(contract.functions, function)(*args)
        sender = self.address
        try:
            gas = call.estimate_gas({"from": sender})
        except (ContractCustomError, ContractLogicError, ContractPanicError) as e:
            raise self._revert(function, e) from None
        receipt = self._send(call, gas, function)
        return TxResult(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=receipt["blockNumber"],
            block_hash="0x" + bytes(receipt["blockHash"]).hex(),
            gas_used=receipt["gasUsed"],
            events=self._events(contract, receipt),
        )

    def deploy(self, abi: Sequence[Mapping[str, Any]], bytecode: bytes | str) -> ChecksumAddress:
        """Deploys a contract without constructor arguments from this client's account (ezkl's reusable
        verifier, for a verified model) and answers its address."""
        call = self.w3.eth.contract(abi=abi, bytecode=bytecode).constructor()
        receipt = self._send(call, call.estimate_gas({"from": self.address}), "deploy")
        address = receipt["contractAddress"]
        if address is None:  # a receipt of a creation always names it; web3 types it Optional
            raise ChainError("deploy: the receipt names no contract address")
        return to_checksum_address(address)

    def _send(self, call, gas: int, what: str) -> TxReceipt:
        """Sends `call` (a contract function or constructor) from this client's account, with the next nonce it
        tracks; a receipt that reverted on inclusion is a ChainRevert."""
        sender = self.address
        if self._nonce is None or not self._track_nonce:
            self._nonce = self.w3.eth.get_transaction_count(sender, "pending")
        tx = call.build_transaction({"from": sender, "nonce": self._nonce, "gas": int(gas * GAS_MARGIN) + 10_000,
                                     "chainId": self.deployment.chain_id})
        for fee_field in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
            tx.pop(fee_field, None)  # web3.py's defaults; send_transaction prices it (fees.py)
        try:
            receipt = send_transaction(self.w3, self.signer, tx, what=what, depth=self.confirmations,
                                       poll=self._poll_latency)
        except ChainError:
            self._nonce = None  # refused or stalled: resynchronise with the node next time
            raise
        self._nonce += 1
        if receipt["status"] != 1:
            raise ChainRevert(what, "reverted on inclusion", (), tx_hash="0x" + bytes(receipt["transactionHash"]).hex())
        return receipt

    def _revert(self, function: str, error: Exception) -> ChainRevert:
        name, args = self._errors.decode(getattr(error, "data", None))
        if name.startswith("unknown") and isinstance(error, ContractLogicError) and error.message:
            name = error.message
        return ChainRevert(function, name, args)

    @staticmethod
    def _events(contract, receipt) -> dict[str, list[dict[str, Any]]]:
        """The contract's events in the receipt, by name; logs of other contracts (the token's Transfer in a
        deposit) and of other events are discarded by web3.py's decoder, not tried and caught here."""
        address = contract.address.lower()
        own = {**receipt, "logs": [log for log in receipt["logs"] if log["address"].lower() == address]}
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in contract.abi:
            if entry["type"] == "event":
                decoded = contract.events[entry["name"]]().process_receipt(own, errors=DISCARD)
                if decoded:
                    found[entry["name"]] = [dict(event["args"]) for event in decoded]
        return found

    # ------------------------------------------------------------------ owner

    def approve_and_deposit(self, model_id: int, amount: int) -> TxResult:
        if self.token.functions.allowance(self.address, self.market.address).call() < amount:
            self.transact(self.token, "approve", self.market.address, 2**256 - 1)
        return self.transact(self.market, "deposit", model_id, amount)

    def register_model(self, hosting_node: str, model_hash: bytes, test_set_hash: bytes, field_table_hash: bytes,
                       policy_hash: bytes, initial_weights_hash: bytes,
                       baseline_accuracy_ppm: int) -> tuple[int, TxResult]:
        """Registers a model; `initial_weights_hash` is the canonical weights hash the first checkpoint opens from."""
        result = self.transact(self.market, "registerModel", to_checksum_address(hosting_node), model_hash,
                               test_set_hash, field_table_hash, policy_hash, initial_weights_hash,
                               baseline_accuracy_ppm)
        return result.event("ModelRegistered")["modelId"], result

    def register_verified_model(self, hosting_node: str, model_hash: bytes, test_set_hash: bytes,
                                field_table_hash: bytes, policy_hash: bytes, initial_weights_hash: bytes,
                                baseline_accuracy_ppm: int, terms: VerifiedTerms) -> tuple[int, TxResult]:
        """register_model in verified mode: every settle, and the hosting node's every rollback, must prove its
        accuracy against `terms` (the mode is fixed for the model's life)."""
        result = self.transact(self.market, "registerVerifiedModel", to_checksum_address(hosting_node), model_hash,
                               test_set_hash, field_table_hash, policy_hash, initial_weights_hash,
                               baseline_accuracy_ppm, terms.as_abi())
        return result.event("ModelRegistered")["modelId"], result

    def set_quote(self, model_id: int, price_per_row: int, row_cap: int = 0) -> TxResult:
        return self.transact(self.market, "setQuote", model_id, price_per_row, row_cap)

    def withdraw(self, model_id: int, amount: int, to: str) -> TxResult:
        return self.transact(self.market, "withdraw", model_id, amount, to_checksum_address(to))

    # ------------------------------------------------------------------ hosting node

    def open_checkpoint(self, model_id: int, max_rows: int, weights_hash: bytes,
                        accuracy_before_ppm: int) -> tuple[int, TxResult]:
        """Opens from `weights_hash`, which must be the model's current weights hash (WeightsHashMismatch)."""
        result = self.transact(self.market, "openCheckpoint", model_id, max_rows, weights_hash, accuracy_before_ppm)
        return result.event("CheckpointOpened")["checkpointId"], result

    def commit_bill(self, checkpoint_id: int, payout_root: bytes, rows_root: bytes, row_count: int,
                    total: int) -> TxResult:
        return self.transact(self.market, "commitBill", checkpoint_id, payout_root, rows_root, row_count, total)

    def settle(self, checkpoint_id: int, accuracy_after_ppm: int, weights_hash_after: bytes) -> TxResult:
        """Settles; the model's weights hash becomes `weights_hash_after` (the trained target's)."""
        return self.transact(self.market, "settleCheckpoint", checkpoint_id, accuracy_after_ppm, weights_hash_after)

    def rollback(self, checkpoint_id: int, accuracy_after_ppm: int, weights_hash_after: bytes) -> TxResult:
        """Rolls back, recording the discarded weights' hash; only the owner (after the timeout) may give zero."""
        return self.transact(self.market, "rollbackCheckpoint", checkpoint_id, accuracy_after_ppm,
                             weights_hash_after)

    def settle_verified(self, checkpoint_id: int, accuracy_after_ppm: int, weights_hash_after: bytes,
                        proof: "AccuracyProof") -> TxResult:
        """Settles a verified model's checkpoint on `proof`; its accuracy must be the proof's
        (`proof.accuracy_ppm`), and the model's Poseidon commitment becomes `proof.weights_commitment`."""
        return self.transact(self.market, "settleCheckpointVerified", checkpoint_id, accuracy_after_ppm,
                             weights_hash_after, proof.as_abi())

    def rollback_verified(self, checkpoint_id: int, accuracy_after_ppm: int, weights_hash_after: bytes,
                          proof: "AccuracyProof") -> TxResult:
        """The hosting node's rollback of a verified model's checkpoint, proving the accuracy it records."""
        return self.transact(self.market, "rollbackCheckpointVerified", checkpoint_id, accuracy_after_ppm,
                             weights_hash_after, proof.as_abi())

    def anchor_history(self, model_id: int, root: bytes, row_count: int) -> tuple[int, TxResult]:
        result = self.transact(self.market, "anchorHistory", model_id, root, row_count)
        return result.event("HistoryAnchored")["anchorIndex"], result

    # ------------------------------------------------------------------ sources and proxies

    def claim(self, checkpoint_id: int, amount: int, proof: Sequence[bytes]) -> TxResult:
        return self.transact(self.market, "claim", checkpoint_id, amount, list(proof))

    def claim_many(self, checkpoint_ids: Sequence[int], amounts: Sequence[int],
                   proofs: Sequence[Sequence[bytes]]) -> TxResult:
        return self.transact(self.market, "claimMany", list(checkpoint_ids), list(amounts), [list(p) for p in proofs])

    def register_proxy(self, endpoint: str) -> TxResult:
        return self.transact(self.market, "registerProxy", endpoint)

    def publish_listing(self, first_row_id: int, row_count: int, fields: Sequence[str]) -> TxResult:
        return self.transact(self.market, "publishListing", first_row_id, row_count, list(fields))

    # ------------------------------------------------------------------ reads

    def model(self, model_id: int) -> dict[str, Any]:
        return _struct(self.market.functions.getModel(model_id).call())

    def is_verified(self, model_id: int) -> bool:
        return self.market.functions.isVerified(model_id).call()

    def verified_terms(self, model_id: int) -> VerifiedTerms:
        """A verified model's terms, its current Poseidon weights commitment among them (NotVerified if plain)."""
        try:
            found = self.market.functions.getVerifiedTerms(model_id).call()
        except (ContractCustomError, ContractLogicError) as e:
            raise self._revert("getVerifiedTerms", e) from None
        return VerifiedTerms(found.verifier, bytes(found.vkaDigest), bytes(found.testSetZkRoot),
                             found.weightsCommitment)

    def proven_weights(self, checkpoint_id: int) -> ProvenWeights:
        try:
            found = self.market.functions.getProvenWeights(checkpoint_id).call()
        except (ContractCustomError, ContractLogicError) as e:
            raise self._revert("getProvenWeights", e) from None
        return ProvenWeights(found.weightsCommitment, found.weightsCommitmentAfter)

    def proven_close(self, checkpoint_id: int) -> ProvenClose:
        """The settle or rollback that proved the checkpoint, found by its CheckpointProven event and decoded
        from the transaction's calldata with the market's ABI. Refused (ChainError) when no proof closed it (an
        open checkpoint, the owner's proof-free rollback, a plain model) or when the close did not call the
        market directly (a contract wallet's calldata is its own)."""
        logs = self.market.events.CheckpointProven.get_logs(from_block=self.deployment.market_deploy_block,
                                                             argument_filters={"checkpointId": checkpoint_id})
        if not logs:
            raise ChainError(f"checkpoint {checkpoint_id} was not closed on a proof: no CheckpointProven event")
        found = logs[-1]["transactionHash"]
        tx, tx_hash = self.w3.eth.get_transaction(found), bytes(found)
        if tx["to"] is None or to_checksum_address(tx["to"]) != self.market.address:
            raise ChainError(f"checkpoint {checkpoint_id}'s proof came in transaction 0x{tx_hash.hex()} to "
                             f"{tx['to']}, not to the market: its calldata is not the market's call")
        function, arguments = self.market.decode_function_input(tx["input"])
        if function.fn_name not in VERIFIED_CLOSES or arguments["checkpointId"] != checkpoint_id:
            raise ChainError(f"transaction 0x{tx_hash.hex()} calls {function.fn_name} of checkpoint "
                             f"{arguments.get('checkpointId')}, not a verified close of checkpoint {checkpoint_id}")
        proof = arguments["proof"]
        fields = tuple(proof.values()) if isinstance(proof, Mapping) else tuple(proof)
        return ProvenClose(tx_hash, function.fn_name, arguments["accuracyAfter"],
                           bytes(arguments["weightsHashAfter"]), fields)

    def checkpoint(self, checkpoint_id: int) -> dict[str, Any]:
        record = _struct(self.market.functions.getCheckpoint(checkpoint_id).call())
        record["state"] = CHECKPOINT_STATES[record["state"]]
        return record

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        """A transaction's receipt in the chain as it stands now; None if it is not (or no longer) in it."""
        return receipt_or_none(self.w3, tx_hash)

    def checkpoint_count(self) -> int:
        """Checkpoints opened over all models: ids run from 1 to this."""
        return self.market.functions.checkpointCount().call()

    def is_claimed(self, checkpoint_id: int, account: str) -> bool:
        return self.market.functions.isClaimed(checkpoint_id, to_checksum_address(account)).call()

    def balance_of(self, account: str) -> int:
        return self.token.functions.balanceOf(to_checksum_address(account)).call()

    def anchor_count(self, model_id: int) -> int:
        return self.market.functions.anchorCount(model_id).call()

    def anchor(self, model_id: int, index: int) -> dict[str, Any]:
        return _struct(self.market.functions.getAnchor(model_id, index).call())

    def verify_anchored_row(self, model_id: int, anchor_index: int, row_hash: bytes, proof: Sequence[bytes]) -> bool:
        return self.market.functions.verifyAnchoredRow(model_id, anchor_index, row_hash, list(proof)).call()


def _struct(decoded) -> dict[str, Any]:
    """A struct web3.py decoded with the ABI's component names (decode_tuples=True), as a plain dict."""
    return dict(decoded._asdict())
