"""Constants and helpers shared by the market's unit tests (fixtures live in conftest.py)."""
from eth_abi import encode
from eth_utils import keccak

from orchestrator.hashing.merkle import MerkleTree, payout_leaf

CHECKPOINT_TIMEOUT = 7 * 24 * 3600
SUPPLY = 10**27
BASELINE_ACCURACY = 500_000  # 50 % in parts per million
PRICE = 5  # token units per row
ROW_CAP = 1_000
ESCROW = 100_000
MODEL_ID = 1

# CheckpointState enum values as the ABI returns them.
NONE, OPEN, BILLED, SETTLED, ROLLED_BACK = range(5)



def hx(data):
    """bytes as a 0x-hex string: how brownie's bytes32 return values compare."""
    return "0x" + bytes(data).hex()


MODEL_HASH = hx(keccak(b"model file"))
TEST_SET_HASH = hx(keccak(b"test set"))
FIELD_TABLE_HASH = hx(keccak(b"field table"))
POLICY_HASH = hx(keccak(b"privacy policy"))
WEIGHTS_HASH = hx(keccak(b"weights at the backup point"))  # what model 1 registers as its initial weights
ZERO_BYTES32 = hx(bytes(32))


def weights_after(checkpoint_id):
    """A stand-in weights hash of the model trained in checkpoint ``checkpoint_id`` (distinct per checkpoint)."""
    return hx(keccak(b"weights trained in checkpoint %d" % checkpoint_id))


def err(name, *args):
    """The revert string brownie reports for custom error ``name(args...)``: ``"Name: arg1, arg2"``,
    addresses in lowercase, and ``"Name: "`` for an error without arguments."""
    return f"{name}: " + ", ".join(_revert_arg(arg) for arg in args)


def _revert_arg(arg):
    if hasattr(arg, "address"):  # a brownie account or contract
        arg = arg.address
    return arg.lower() if isinstance(arg, str) else str(arg)  # bytes32 arguments print as bytes: pass raw()


def raw(hex_string):
    """A 0x-hex bytes32 as bytes: how err() must be given a bytes32 argument (brownie prints it as bytes)."""
    return bytes.fromhex(hex_string[2:])


class PayoutTree(MerkleTree):
    """The payout tree of one checkpoint's bill, one leaf per (account, amount), by the market's leaf rule."""

    def __init__(self, checkpoint_id, payouts):
        self.checkpoint_id = checkpoint_id
        self.payouts = [(_address(account), amount) for account, amount in payouts]
        self._index = {account.lower(): i for i, (account, _) in enumerate(self.payouts)}
        super().__init__([payout_leaf(checkpoint_id, account, amount) for account, amount in self.payouts])

    def amount_of(self, account):
        return self.payouts[self._index[_address(account).lower()]][1]

    def proof_for(self, account):
        return self.proof(self._index[_address(account).lower()])

    @property
    def total(self):
        return sum(amount for _, amount in self.payouts)


def _address(account):
    return account.address if hasattr(account, "address") else str(account)


def bill_row_leaf(source, row_hash_, price):
    """A bill row record under the rows root: keccak256(keccak256(abi.encode(address, bytes32, uint256))).
    The market only stores the rows root, so this stands in for whatever record layout the node uses."""
    return keccak(keccak(encode(["address", "bytes32", "uint256"], [_address(source), bytes(row_hash_), price])))


def row_hash(n):
    """A stand-in row hash for row number ``n``."""
    return keccak(b"row %d" % n)


class Ledger:
    """Walks a checkpoint of one model through open, bill, settle and claim, the hosting node's way."""

    def __init__(self, market, model_id, node):
        self.market = market
        self.model_id = model_id
        self.node = node

    def best(self):
        return self.market.getModel(self.model_id)["bestAccuracy"]

    def weights(self):
        return self.market.getModel(self.model_id)["weightsHash"]

    def open(self, max_rows=100):
        """Opens from the weights the model holds now, at its best accuracy: what a well-behaved node does."""
        tx = self.market.openCheckpoint(self.model_id, max_rows, self.weights(), self.best(), {"from": self.node})
        return tx.return_value

    def bill(self, checkpoint_id, rows_by_source):
        """Commits a bill paying each source PRICE per row; returns the payout tree."""
        payouts = [(source, rows * PRICE) for source, rows in rows_by_source]
        tree = PayoutTree(checkpoint_id, payouts)
        rows = sum(rows for _, rows in rows_by_source)
        self.market.commitBill(checkpoint_id, tree.root, rows_root(rows_by_source), rows, tree.total, {"from": self.node})
        return tree

    def settle(self, checkpoint_id, gain=1_000):
        return self.market.settleCheckpoint(
            checkpoint_id, self.best() + gain, weights_after(checkpoint_id), {"from": self.node}
        )

    def settled(self, rows_by_source, max_rows=100):
        """Opens, bills and settles a checkpoint; returns (checkpoint id, payout tree)."""
        checkpoint_id = self.open(max_rows)
        tree = self.bill(checkpoint_id, rows_by_source)
        self.settle(checkpoint_id)
        return checkpoint_id, tree


def rows_root(rows_by_source):
    """Rows root over (source, row hash, PRICE) records, numbering rows consecutively across sources."""
    leaves, n = [], 0
    for source, rows in rows_by_source:
        for _ in range(rows):
            leaves.append(bill_row_leaf(source, row_hash(n), PRICE))
            n += 1
    return hx(MerkleTree(leaves).root) if leaves else ZERO_BYTES32
