"""Merkle trees that OpenZeppelin 5's `MerkleProof` accepts.

Rules (they are OZ's, so roots and proofs built here verify on chain):
- an internal node is keccak256 of its two children sorted ascending as bytes (commutative hashing, so a
  proof is a plain list of siblings, no left/right flags);
- leaves are built by the caller; `standard_leaf` and `payout_leaf` give OZ's "standard" double-hashed
  leaves, which cannot be confused with internal nodes (a 64-byte pre-image is never a leaf pre-image);
- leaves are paired in the order given: (0,1), (2,3), ...; a lone node at the end of a level is promoted to
  the next level unchanged (not duplicated), so it contributes no sibling to the proof at that level.
This is not the layout of OZ's JavaScript StandardMerkleTree (which sorts leaves into a complete tree), but
MerkleProof only checks the sibling chain, so both verify.
"""
from collections.abc import Iterable, Sequence
from itertools import islice

from eth_abi import encode as abi_encode

from orchestrator.errors import MerkleError

from .keccak import keccak256

HASH_SIZE = 32


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OZ's commutative node hash: keccak256 of the two children, smaller first."""
    return keccak256(a + b if a < b else b + a)


def standard_leaf(value: bytes) -> bytes:
    """keccak256(keccak256(abi.encode(bytes32 value))); abi.encode of a bytes32 is the 32 bytes themselves."""
    return keccak256(keccak256(_checked_hash(value, "leaf value")))


def payout_leaf(checkpoint_id: int, account: str, amount: int) -> bytes:
    """keccak256(keccak256(abi.encode(uint256 checkpointId, address account, uint256 amount)))."""
    return keccak256(keccak256(abi_encode(["uint256", "address", "uint256"], [checkpoint_id, account, amount])))


def billed_row_leaf(source: str, row_hash: bytes, price: int) -> bytes:
    """keccak256(keccak256(abi.encode(address source, bytes32 rowHash, uint256 price))): a leaf of a bill's
    rows tree (the market's rowsRoot), so anyone holding a bill can rebuild the root the chain holds."""
    return keccak256(keccak256(abi_encode(["address", "bytes32", "uint256"], [source, row_hash, price])))


def billed_row_leaves(sources: Sequence[str], row_hashes: Sequence[bytes], prices: Sequence[int]) -> list[bytes]:
    """billed_row_leaf of each (source, row hash, price), the ABI encoding written directly: an address is 12
    zero bytes and its 20, a uint256 32 bytes big-endian. eth_abi's per-call validation was most of a bill's
    time at 100k rows; each distinct source is decoded once."""
    addresses: dict[str, bytes] = {}
    leaves = []
    for source, row_hash, price in zip(sources, row_hashes, prices, strict=True):
        address = addresses.get(source)
        if address is None:
            address = addresses[source] = bytes(12) + _address_bytes(source)
        if not 0 <= price < 1 << 256:
            raise MerkleError(f"price {price} is not a uint256")
        leaves.append(keccak256(keccak256(address + _checked_hash(row_hash, "row hash") + price.to_bytes(32, "big"))))
    return leaves


def _address_bytes(source: str) -> bytes:
    text = source[2:] if source[:2] in ("0x", "0X") else source
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise MerkleError(f"{source!r} is not a 20-byte address")
    return raw


class MerkleTree:
    """All levels of a tree over `leaves` in the order given: `levels[0]` the leaves, `levels[-1]` the root."""

    def __init__(self, leaves: Sequence[bytes]):
        if len(leaves) == 0:
            raise MerkleError("a Merkle tree needs at least one leaf")
        level = [_checked_hash(leaf, f"leaf {i}") for i, leaf in enumerate(leaves)]
        self.levels = [level]
        while len(level) > 1:
            # A list comprehension over zipped slices: the per-pair cost is what bounds 1M-leaf roots.
            parents = [keccak256(a + b if a < b else b + a) for a, b in zip(level[0::2], level[1::2])]
            if len(level) % 2:
                parents.append(level[-1])
            level = parents
            self.levels.append(level)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf `index` up to the root; a promoted lone node adds none at its level."""
        if not 0 <= index < len(self.levels[0]):
            raise MerkleError(f"leaf index {index} is outside a tree of {len(self.levels[0])} leaves")
        siblings = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            index //= 2
        return siblings


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    return MerkleTree(leaves).root


# Leaves hashed to a subtree root at a time by merkle_root_of: 2**16 of them hold ~4 MB of levels.
SUBTREE_LEAVES = 1 << 16


def merkle_root_of(leaves: Iterable[bytes], subtree_leaves: int = SUBTREE_LEAVES) -> bytes:
    """The root MerkleTree(leaves).root would give, without holding every level of the tree: the leaves are taken
    `subtree_leaves` (a power of two) at a time and each run reduced to its subtree's root, then those roots to
    the root. The same root because, pairing from the left and promoting a lone node, node i of level k covers
    exactly leaves i*2**k .. (i+1)*2**k - 1 (the last node what is left): the tree over aligned runs of 2**k
    leaves is the tree above level k. Holds one run of leaves and one root per run."""
    if subtree_leaves < 1 or subtree_leaves & (subtree_leaves - 1):
        raise MerkleError(f"a subtree has a power of two leaves, not {subtree_leaves}")
    it = iter(leaves)
    roots = []
    while run := list(islice(it, subtree_leaves)):
        roots.append(MerkleTree(run).root)
    if not roots:
        raise MerkleError("a Merkle tree needs at least one leaf")
    return MerkleTree(roots).root


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    return MerkleTree(leaves).proof(index)


def process_proof(proof: Sequence[bytes], leaf: bytes) -> bytes:
    """The root that `proof` and `leaf` hash up to (OZ's processProof)."""
    node = _checked_hash(leaf, "leaf")
    for i, sibling in enumerate(proof):
        node = hash_pair(node, _checked_hash(sibling, f"proof element {i}"))
    return node


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """Whether `leaf` belongs to the tree of `root` (OZ's verify)."""
    return process_proof(proof, leaf) == _checked_hash(root, "root")


def _checked_hash(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        raise MerkleError(f"{what} must be {HASH_SIZE} bytes, got {value!r}")
    return bytes(value)
