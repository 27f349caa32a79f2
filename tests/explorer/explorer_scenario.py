"""Market stories the explorer tests index and render, played with brownie's signed transactions."""
import json
from dataclasses import dataclass, field
from pathlib import Path

from eth_utils import keccak

from orchestrator.chain.deployment import PROJECT_ROOT, load_deployment
from orchestrator.hashing.merkle import MerkleTree, payout_leaf, standard_leaf

UNIT = 10**18
PRICE = UNIT // 100  # 0.01 token a row
BASELINE = 620_000  # 62 % in parts per million
SETTLED_ACCURACY = 710_000
ROLLED_BACK_ACCURACY = 690_000
ESCROW = 100 * UNIT
ROW_CAP = 5_000
PROXY_ENDPOINT = "http://127.0.0.1:9001"
LISTED_FIELDS = ["mean_radius", "mean_texture", "diagnosis"]
WEIGHTS_V0 = keccak(b"weights v0")  # registered
WEIGHTS_V1 = keccak(b"weights v1")  # reached by the settled checkpoint
WEIGHTS_DISCARDED = keccak(b"weights v2, rolled back")


def hx(data) -> str:
    return "0x" + bytes(data).hex()


def write_deployment(folder: Path, token, market, chain_id: int) -> Path:
    """A deployment file as scripts/deploy.py writes it, pointing at this session's contracts."""
    path = Path(folder) / "development.json"
    path.write_text(json.dumps({
        "network": "development", "chain_id": chain_id, "token": token.address, "market": market.address,
        "market_deploy_block": market.tx.block_number, "artifacts": str(PROJECT_ROOT / "build" / "contracts"),
    }))
    return path


@dataclass
class Deployed:
    token: object
    market: object
    path: Path

    @property
    def deployment(self):
        return load_deployment(self.path)


def deploy(accounts, token_class, market_class, folder: Path, chain_id: int) -> Deployed:
    token = token_class.deploy("SplitLedger Test Token", "SLT", 10**9 * UNIT, {"from": accounts[0]})
    market = market_class.deploy(token, 7 * 24 * 3600, {"from": accounts[0]})
    return Deployed(token, market, write_deployment(folder, token, market, chain_id))


def register_funded_model(deployed: Deployed, owner, node, escrow: int = ESCROW, accounts=None) -> int:
    """Registers a model owned by `owner` and hosted by `node`, escrows `escrow` and quotes PRICE."""
    token, market = deployed.token, deployed.market
    if token.balanceOf(owner) < escrow:
        token.transfer(owner, escrow, {"from": accounts[0]})
    token.approve(market, 2**256 - 1, {"from": owner})
    tx = market.registerModel(node, keccak(b"model file"), keccak(b"test set"), keccak(b"field table"),
                              keccak(b"privacy policy"), WEIGHTS_V0, BASELINE, {"from": owner})
    model_id = tx.return_value
    market.deposit(model_id, escrow, {"from": owner})
    market.setQuote(model_id, PRICE, ROW_CAP, {"from": owner})
    return model_id


@dataclass
class Story:
    """The demo's story (scripts/demo.py), and what the explorer should show for it."""

    model_id: int
    settled: int
    rolled_back: int
    owner: str
    node: str
    proxy: str
    sources: list[str]
    payouts: dict[str, int]
    payout_tree: MerkleTree
    row_hashes: list[bytes]
    rows_tree: MerkleTree
    txs: dict[str, object] = field(default_factory=dict)

    @property
    def paid(self) -> int:
        return sum(self.payouts.values())


def play_demo_story(deployed: Deployed, accounts) -> Story:
    """Owner escrows 100 tokens; a proxy lists 300 rows; checkpoint 1 bills 120 + 80 rows, settles at
    62 % -> 71 % and both sources claim; 200 row hashes are anchored; checkpoint 2 rolls back at 69 %."""
    market = deployed.market
    owner, node, proxy, sources = accounts[1], accounts[2], accounts[3], [accounts[4], accounts[5]]
    txs = {}
    model_id = register_funded_model(deployed, owner, node, accounts=accounts)
    txs["registerProxy"] = market.registerProxy(PROXY_ENDPOINT, {"from": proxy})
    txs["publishListing"] = market.publishListing(0, 300, LISTED_FIELDS, {"from": proxy})

    txs["open1"] = market.openCheckpoint(model_id, 300, WEIGHTS_V0, BASELINE, {"from": node})
    first = txs["open1"].return_value
    payouts = {sources[0].address: 120 * PRICE, sources[1].address: 80 * PRICE}
    payout_tree = MerkleTree([payout_leaf(first, a, amount) for a, amount in payouts.items()])
    row_hashes = [keccak(f"row {i}".encode()) for i in range(200)]
    rows_tree = MerkleTree([standard_leaf(h) for h in row_hashes])
    txs["commitBill"] = market.commitBill(first, payout_tree.root, rows_tree.root, 200, sum(payouts.values()),
                                          {"from": node})
    txs["settle"] = market.settleCheckpoint(first, SETTLED_ACCURACY, WEIGHTS_V1, {"from": node})
    for index, source in enumerate(sources):
        txs[f"claim{index}"] = market.claim(first, payouts[source.address], payout_tree.proof(index),
                                            {"from": source})
    txs["anchor"] = market.anchorHistory(model_id, rows_tree.root, 200, {"from": node})

    txs["open2"] = market.openCheckpoint(model_id, 100, WEIGHTS_V1, SETTLED_ACCURACY, {"from": node})
    second = txs["open2"].return_value
    txs["rollback"] = market.rollbackCheckpoint(second, ROLLED_BACK_ACCURACY, WEIGHTS_DISCARDED, {"from": node})
    return Story(model_id, first, second, owner.address, node.address, proxy.address,
                 [s.address for s in sources], payouts, payout_tree, row_hashes, rows_tree, txs)
