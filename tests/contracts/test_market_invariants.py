"""Stateful property test of the market: random sequences of deposits, withdrawals, quotes, checkpoint
opens, bills, settles, rollbacks and claims over several models and sources, with DESIGN.md's
invariants asserted after every step against a plain-Python mirror of what should have happened, and
weights-hash continuity read back from the chain alone: every checkpoint opens from the weights its model
held (the registered ones, or the last settled checkpoint's weightsHashAfter).

Sequences: SPLITLEDGER_STATEFUL_EXAMPLES (default 20) runs of SPLITLEDGER_STATEFUL_STEPS (default 25)
steps. The nightly-style run is `SPLITLEDGER_STATEFUL_EXAMPLES=10000 make test-stateful` (docs/testing.md).
"""
import os
from dataclasses import dataclass, field

import brownie
from brownie import chain
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from orchestrator.hashing.merkle import merkle_proof, merkle_root, payout_leaf

ACCURACY_SCALE = 1_000_000
N_MODELS = 3
N_SOURCES = 4
OWNER_FUNDS = 10**24
INITIAL_PRICE = 100
INITIAL_ESCROW = 10**5
OPEN, BILLED, SETTLED, ROLLED_BACK = 1, 2, 3, 4

EXAMPLES = int(os.environ.get("SPLITLEDGER_STATEFUL_EXAMPLES", "20"))
STEPS = int(os.environ.get("SPLITLEDGER_STATEFUL_STEPS", "25"))
# CI explores the same sequences every run (a red build is always reproducible); the nightly run sets
# SPLITLEDGER_STATEFUL_RANDOM=1 to draw new ones.
DERANDOMIZE = os.environ.get("SPLITLEDGER_STATEFUL_RANDOM") != "1"


@dataclass
class ExpectedCheckpoint:
    model: int
    state: int
    locked: int
    price: int
    max_rows: int
    total: int = 0
    claimed: int = 0
    payouts: dict = field(default_factory=dict)  # source address -> amount
    leaves: list = field(default_factory=list)
    sources: list = field(default_factory=list)  # same order as leaves
    claimed_by: set = field(default_factory=set)


@dataclass
class ExpectedModel:
    weights: bytes  # the weights hash the next checkpoint must open from
    escrow: int = 0
    best: int = 0
    price: int = 0
    cap: int = 0
    open_checkpoint: int = 0


def initial_weights(index):
    return keccak(b"initial weights of model %d" % index)


def trained_weights(checkpoint_id):
    return keccak(b"weights trained in checkpoint %d" % checkpoint_id)


models = st.integers(0, N_MODELS - 1)
# Prices and deposits on one scale so that opens succeed often enough to reach bills and claims.
amounts = st.integers(1, 10**6)
prices = st.integers(1, 10**4)
caps = st.integers(0, 60)
row_counts = st.integers(1, 80)
shares = st.lists(st.integers(0, 20), min_size=N_SOURCES, max_size=N_SOURCES)
# Now and then a jump to 100 %, so sequences reach the cap, where keeping 100 % settles.
accuracy_gains = st.one_of(st.integers(1, 30_000), st.just(ACCURACY_SCALE))
accuracy_losses = st.integers(0, 10_000)
source_indexes = st.integers(0, N_SOURCES - 1)
picks = st.integers(0, 2**16)
flags = st.booleans()


class MarketStateMachine(RuleBasedStateMachine):
    """One example = one random call sequence, from a fresh chain snapshot with three registered models.

    brownie 1.22's own state_machine helper cannot be subclassed (its classes are compiled), so this is a
    plain hypothesis machine; the class attributes are set once by the test before it runs.
    """

    accounts = token = market = owners = hosts = sources = outsider = None
    # What the random sequences actually did, so the test can prove it exercised every path.
    outcomes = None

    @classmethod
    def deploy(cls, accounts, token, market):
        cls.accounts = accounts
        cls.token = token
        cls.market = market
        cls.owners = [accounts[1], accounts[2], accounts[1]]
        cls.hosts = [accounts[3], accounts[3], accounts[4]]
        cls.sources = [accounts[5 + i] for i in range(N_SOURCES)]
        cls.outsider = accounts[9]
        for owner in set(cls.owners):
            token.transfer(owner, OWNER_FUNDS, {"from": accounts[0]})
            token.approve(market, 2**256 - 1, {"from": owner})
        for index in range(N_MODELS):
            market.registerModel(
                cls.hosts[index], b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, initial_weights(index),
                500_000, {"from": cls.owners[index]},
            )
            # Every sequence starts with a quoted, funded model so that short sequences reach checkpoints.
            market.setQuote(index + 1, INITIAL_PRICE, 0, {"from": cls.owners[index]})
            market.deposit(index + 1, INITIAL_ESCROW, {"from": cls.owners[index]})
        cls.outcomes = {}
        chain.snapshot()

    def _pick_model_with_checkpoint(self, pick, states):
        """A model whose open checkpoint is in one of `states`, chosen by `pick`; None if there is none."""
        candidates = [
            index for index, model in enumerate(self.models)
            if model.open_checkpoint and self.checkpoints[model.open_checkpoint].state in states
        ]
        return candidates[pick % len(candidates)] if candidates else None

    def _weights_held_before(self, index):
        """Every weights hash model `index` has held, oldest first: the registered one, then each settle's."""
        settled = [cid for cid, cp in sorted(self.checkpoints.items()) if cp.model == index and cp.state == SETTLED]
        return [initial_weights(index), *(trained_weights(cid) for cid in settled)]

    def _happened(self, outcome):
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def __init__(self):
        super().__init__()
        chain.revert()
        self.models = [
            ExpectedModel(initial_weights(index), best=500_000, escrow=INITIAL_ESCROW, price=INITIAL_PRICE)
            for index in range(N_MODELS)
        ]
        self.checkpoints = {}
        self.next_checkpoint_id = 1
        self.paid_to = {source.address: 0 for source in self.sources}
        self.source_balance_at_start = {s.address: self.token.balanceOf(s) for s in self.sources}

    # ---------------------------------------------------------------- rules

    @rule(st_model=models, st_amount=amounts)
    def deposit(self, st_model, st_amount):
        self.market.deposit(st_model + 1, st_amount, {"from": self.owners[st_model]})
        self.models[st_model].escrow += st_amount
        self._happened("deposit")

    @rule(st_model=models, st_amount=amounts, st_flag=flags)
    def withdraw(self, st_model, st_amount, st_flag):
        model = self.models[st_model]
        model_id = st_model + 1
        if st_flag:
            with brownie.reverts(f"NotModelOwner: {model_id}, {self.outsider.address.lower()}"):
                self.market.withdraw(model_id, st_amount, self.outsider, {"from": self.outsider})
            return
        owner = self.owners[st_model]
        if st_amount > model.escrow:
            with brownie.reverts(f"InsufficientEscrow: {model_id}, {model.escrow}, {st_amount}"):
                self.market.withdraw(model_id, st_amount, owner, {"from": owner})
            return
        self.market.withdraw(model_id, st_amount, owner, {"from": owner})
        model.escrow -= st_amount
        self._happened("withdraw")

    @rule(st_model=models, st_price=prices, st_cap=caps)
    def set_quote(self, st_model, st_price, st_cap):
        self.market.setQuote(st_model + 1, st_price, st_cap, {"from": self.owners[st_model]})
        self.models[st_model].price = st_price
        self.models[st_model].cap = st_cap
        self._happened("quote")

    @rule(st_model=models, st_rows=row_counts)
    def open_checkpoint(self, st_model, st_rows):
        model = self.models[st_model]
        model_id = st_model + 1
        host = self.hosts[st_model]
        open_call = lambda: self.market.openCheckpoint(  # noqa: E731
            model_id, st_rows, model.weights, model.best, {"from": host}
        )
        if model.open_checkpoint:
            self._happened("open refused: already open")
            with brownie.reverts(f"CheckpointAlreadyOpen: {model_id}, {model.open_checkpoint}"):
                open_call()
            return
        if model.price == 0:
            self._happened("open refused: no quote")
            with brownie.reverts(f"NoQuote: {model_id}"):
                open_call()
            return
        if model.cap and st_rows > model.cap:
            self._happened("open refused: cap")
            with brownie.reverts(f"RowCapExceeded: {st_rows}, {model.cap}"):
                open_call()
            return
        budget = st_rows * model.price
        if budget > model.escrow:
            self._happened("open refused: escrow")
            with brownie.reverts(f"InsufficientEscrow: {model_id}, {model.escrow}, {budget}"):
                open_call()
            return
        # Before the real open, the same open from weights the model does not hold (no extra draw, so the
        # sequences stay those of the other rules): the latest it held and lost, or one nobody registered.
        stale = [w for w in self._weights_held_before(st_model) if w != model.weights]
        given = stale[-1] if stale else keccak(b"weights nobody registered")
        with brownie.reverts(f"WeightsHashMismatch: {given!r}, {model.weights!r}"):
            self.market.openCheckpoint(model_id, st_rows, given, model.best, {"from": host})
        self._happened("open refused: weights")
        tx = open_call()
        checkpoint_id = self.next_checkpoint_id
        assert tx.return_value == checkpoint_id
        self.next_checkpoint_id += 1
        model.escrow -= budget
        model.open_checkpoint = checkpoint_id
        self.checkpoints[checkpoint_id] = ExpectedCheckpoint(
            model=st_model, state=OPEN, locked=budget, price=model.price, max_rows=st_rows
        )
        self._happened("open")

    @precondition(lambda self: any(cp.state == OPEN for cp in self.checkpoints.values()))
    @rule(st_pick=picks, st_share=shares)
    def commit_bill(self, st_pick, st_share):
        st_model = self._pick_model_with_checkpoint(st_pick, (OPEN,))
        checkpoint_id = self.models[st_model].open_checkpoint
        checkpoint = self.checkpoints[checkpoint_id]
        rows_per_source = list(st_share)
        # Scale the draw down so the bill never bills more rows than were locked.
        while sum(rows_per_source) > checkpoint.max_rows:
            rows_per_source = [rows // 2 for rows in rows_per_source]
        payouts = {
            self.sources[i].address: rows * checkpoint.price for i, rows in enumerate(rows_per_source) if rows
        }
        sources = list(payouts)
        leaves = [payout_leaf(checkpoint_id, source, payouts[source]) for source in sources]
        root = merkle_root(leaves) if leaves else b"\x00" * 32
        rows = sum(rows_per_source)
        total = rows * checkpoint.price
        self.market.commitBill(checkpoint_id, root, b"\x06" * 32, rows, total, {"from": self.hosts[st_model]})
        checkpoint.state = BILLED
        checkpoint.total = total
        checkpoint.payouts = payouts
        checkpoint.leaves = leaves
        checkpoint.sources = sources
        self._happened("bill")

    @precondition(lambda self: any(cp.state == BILLED for cp in self.checkpoints.values()))
    @rule(st_pick=picks, st_loss=accuracy_losses)
    def settle_without_gain_is_refused(self, st_pick, st_loss):
        st_model = self._pick_model_with_checkpoint(st_pick, (BILLED,))
        model = self.models[st_model]
        accuracy = max(model.best - st_loss, 0)
        if accuracy == model.best == ACCURACY_SCALE:  # keeping 100 % settles; anything lower is refused
            accuracy -= 1
        checkpoint_id = model.open_checkpoint
        with brownie.reverts(f"NoAccuracyGain: {accuracy}, {model.best}"):
            self.market.settleCheckpoint(
                checkpoint_id, accuracy, trained_weights(checkpoint_id), {"from": self.hosts[st_model]}
            )

    @precondition(lambda self: any(cp.state == BILLED for cp in self.checkpoints.values()))
    @rule(st_pick=picks, st_gain=accuracy_gains)
    def settle(self, st_pick, st_gain):
        st_model = self._pick_model_with_checkpoint(st_pick, (BILLED,))
        model = self.models[st_model]
        checkpoint_id = model.open_checkpoint
        checkpoint = self.checkpoints[checkpoint_id]
        # A strict gain, or (already at 100 %, where no gain is possible) keeping 100 %.
        accuracy = min(model.best + st_gain, ACCURACY_SCALE)
        self._happened("settle at the cap" if accuracy == model.best else "settle")
        self.market.settleCheckpoint(
            checkpoint_id, accuracy, trained_weights(checkpoint_id), {"from": self.hosts[st_model]}
        )
        checkpoint.state = SETTLED
        model.best = accuracy
        model.weights = trained_weights(checkpoint_id)
        model.escrow += checkpoint.locked - checkpoint.total
        model.open_checkpoint = 0

    @precondition(lambda self: any(m.open_checkpoint for m in self.models))
    @rule(st_pick=picks)
    def outsiders_cannot_settle_or_roll_back(self, st_pick):
        st_model = self._pick_model_with_checkpoint(st_pick, (OPEN, BILLED))
        checkpoint_id = self.models[st_model].open_checkpoint
        outsider = self.outsider.address.lower()
        with brownie.reverts(f"NotHostingNode: {st_model + 1}, {outsider}"):
            self.market.settleCheckpoint(
                checkpoint_id, ACCURACY_SCALE, trained_weights(checkpoint_id), {"from": self.outsider}
            )
        with brownie.reverts(f"NotHostingNode: {st_model + 1}, {outsider}"):
            self.market.rollbackCheckpoint(checkpoint_id, 0, trained_weights(checkpoint_id), {"from": self.outsider})
        # The owner may only roll back once the checkpoint timed out (a day at deployment).
        with brownie.reverts():
            self.market.rollbackCheckpoint(checkpoint_id, 0, b"\x00" * 32, {"from": self.owners[st_model]})

    @precondition(lambda self: any(m.open_checkpoint for m in self.models))
    @rule(st_pick=picks)
    def rollback(self, st_pick):
        st_model = self._pick_model_with_checkpoint(st_pick, (OPEN, BILLED))
        model = self.models[st_model]
        checkpoint_id = model.open_checkpoint
        self.market.rollbackCheckpoint(checkpoint_id, 0, trained_weights(checkpoint_id), {"from": self.hosts[st_model]})
        self.checkpoints[checkpoint_id].state = ROLLED_BACK
        model.escrow += self.checkpoints[checkpoint_id].locked
        model.open_checkpoint = 0
        self._happened("rollback")

    def _unclaimed_payouts(self):
        return [
            (checkpoint_id, source)
            for checkpoint_id, checkpoint in sorted(self.checkpoints.items())
            if checkpoint.state == SETTLED
            for source in checkpoint.sources
            if source not in checkpoint.claimed_by
        ]

    @precondition(lambda self: self._unclaimed_payouts())
    @rule(st_pick=picks)
    def claim(self, st_pick):
        pending = self._unclaimed_payouts()
        checkpoint_id, address = pending[st_pick % len(pending)]
        checkpoint = self.checkpoints[checkpoint_id]
        owed = checkpoint.payouts[address]
        proof = merkle_proof(checkpoint.leaves, checkpoint.sources.index(address))
        self.market.claim(checkpoint_id, owed, proof, {"from": address})
        checkpoint.claimed_by.add(address)
        checkpoint.claimed += owed
        self.paid_to[address] += owed
        self._happened("claim")

    @precondition(lambda self: self.checkpoints)
    @rule(st_pick=picks, st_source=source_indexes, st_flag=flags)
    def wrong_claims_are_refused(self, st_pick, st_source, st_flag):
        """Claims on unsettled checkpoints, for more than the leaf says, by non-payees, or twice."""
        checkpoint_id = sorted(self.checkpoints)[st_pick % len(self.checkpoints)]
        checkpoint = self.checkpoints[checkpoint_id]
        claimant = self.sources[st_source]
        address = claimant.address
        owed = checkpoint.payouts.get(address, 0)
        proof = merkle_proof(checkpoint.leaves, checkpoint.sources.index(address)) if owed else []
        if checkpoint.state != SETTLED:
            with brownie.reverts(f"WrongCheckpointState: {checkpoint_id}, {checkpoint.state}"):
                self.market.claim(checkpoint_id, max(owed, 1), proof, {"from": claimant})
        elif address in checkpoint.claimed_by and not st_flag:
            with brownie.reverts(f"AlreadyClaimed: {checkpoint_id}, {address.lower()}"):
                self.market.claim(checkpoint_id, owed, proof, {"from": claimant})
        else:
            asked = owed * 2 + 1  # more than the leaf says (or anything, when nothing is owed)
            expected = (
                f"AlreadyClaimed: {checkpoint_id}, {address.lower()}"
                if address in checkpoint.claimed_by
                else f"InvalidProof: {checkpoint_id}, {address.lower()}, {asked}"
            )
            with brownie.reverts(expected):
                self.market.claim(checkpoint_id, asked, proof, {"from": claimant})

    @precondition(lambda self: any(cp.state == SETTLED for cp in self.checkpoints.values()))
    @rule(st_pick=picks)
    def stolen_proof_is_refused(self, st_pick):
        """Someone presenting another source's leaf and proof is refused: the leaf binds the receiver."""
        settled = [cid for cid, cp in self.checkpoints.items() if cp.state == SETTLED and cp.sources]
        if not settled:
            return
        checkpoint_id = settled[st_pick % len(settled)]
        checkpoint = self.checkpoints[checkpoint_id]
        victim_index = st_pick % len(checkpoint.sources)
        amount = checkpoint.payouts[checkpoint.sources[victim_index]]
        with brownie.reverts(f"InvalidProof: {checkpoint_id}, {self.outsider.address.lower()}, {amount}"):
            self.market.claim(
                checkpoint_id, amount, merkle_proof(checkpoint.leaves, victim_index), {"from": self.outsider}
            )

    # ---------------------------------------------------------------- invariants

    @invariant()
    def token_balance_equals_escrow_plus_locked_plus_unpaid(self):
        escrowed = sum(model.escrow for model in self.models)
        locked = sum(cp.locked for cp in self.checkpoints.values() if cp.state in (OPEN, BILLED))
        unpaid = sum(cp.total - cp.claimed for cp in self.checkpoints.values() if cp.state == SETTLED)
        assert self.token.balanceOf(self.market) == escrowed + locked + unpaid

    @invariant()
    def models_match_mirror(self):
        for index, expected in enumerate(self.models):
            model = self.market.getModel(index + 1).dict()
            assert model["escrow"] == expected.escrow
            assert model["bestAccuracy"] == expected.best
            assert model["openCheckpointId"] == expected.open_checkpoint
            assert bytes(model["weightsHash"]) == expected.weights

    @invariant()
    def weights_hash_chain_is_unbroken(self):
        """From the chain's records alone: each checkpoint opened from the hash its model held then, only a
        settle moved that hash on (to its weightsHashAfter), and the model holds the last one reached."""
        held = {index: initial_weights(index) for index in range(N_MODELS)}
        for checkpoint_id in range(1, self.next_checkpoint_id):
            record = self.market.getCheckpoint(checkpoint_id).dict()
            index = record["modelId"] - 1
            assert bytes(record["weightsHash"]) == held[index]
            if record["state"] == SETTLED:
                held[index] = bytes(record["weightsHashAfter"])
        for index in range(N_MODELS):
            assert bytes(self.market.getModel(index + 1).dict()["weightsHash"]) == held[index]

    @invariant()
    def checkpoints_never_pay_more_than_locked_and_rollbacks_pay_nobody(self):
        for checkpoint_id, expected in self.checkpoints.items():
            record = self.market.getCheckpoint(checkpoint_id).dict()
            assert record["state"] == expected.state
            assert record["claimed"] == expected.claimed <= record["billTotal"] <= record["lockedBudget"]
            if expected.state == ROLLED_BACK:
                assert record["claimed"] == 0

    @invariant()
    def each_payout_reaches_its_receiver_once(self):
        for source in self.sources:
            received = self.token.balanceOf(source) - self.source_balance_at_start[source.address]
            assert received == self.paid_to[source.address]


def test_market_invariants_hold_under_random_call_sequences(accounts, SplitLedgerToken, SplitLedgerMarket):
    token = SplitLedgerToken.deploy("Test", "TST", 10**27, {"from": accounts[0]})
    market = SplitLedgerMarket.deploy(token, 24 * 3600, {"from": accounts[0]})
    MarketStateMachine.deploy(accounts, token, market)
    run_state_machine_as_test(
        MarketStateMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=DERANDOMIZE,
            suppress_health_check=list(HealthCheck),
        ),
    )
    if EXAMPLES >= 20:
        missing = {"deposit", "withdraw", "quote", "open", "bill", "settle", "rollback", "claim"} - set(
            MarketStateMachine.outcomes
        )
        assert not missing, f"no random sequence reached {sorted(missing)}: {MarketStateMachine.outcomes}"
    print("stateful outcomes:", MarketStateMachine.outcomes)
