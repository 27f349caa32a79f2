"""The main job, contract level: deploys token + market on the local anvil and plays one short market
story with real signed transactions — an owner escrows and quotes, a proxy lists rows, the hosting node
opens a checkpoint, bills two sources and settles on a gain, the sources claim, a second checkpoint
is rolled back, the history set is anchored — then checks that every token is accounted for.

    make demo            (= brownie run scripts/demo.py --silent on the development network)
"""
from brownie import accounts, chain

from orchestrator.container.merkle import MerkleTree, payout_leaf, standard_leaf
from orchestrator.container.keccak import keccak256
from scripts.deploy import deploy

UNIT = 10**18
PRICE_PER_ROW = UNIT // 100  # 0.01 token per row


def _ppm(fraction):
    return round(fraction * 1_000_000)


def _show(label, tx):
    print(f"  {label:<34} tx {tx.txid}  block {tx.block_number}  gas {tx.gas_used}")
    return tx


def main():
    deployer, owner, hosting_node, proxy = accounts[0], accounts[1], accounts[2], accounts[3]
    sources = [accounts[4], accounts[5]]

    token, market, record = deploy(deployer)
    print(f"deployed token {token.address} and market {market.address} (chain {record['chain_id']})")
    token.transfer(owner, 1_000 * UNIT, {"from": deployer})
    token.approve(market, 2**256 - 1, {"from": owner})

    print("owner registers a model and escrows 100 tokens")
    tx = _show("registerModel", market.registerModel(
        hosting_node, keccak256(b"model file"), keccak256(b"test set"), keccak256(b"field table"),
        keccak256(b"privacy policy"), _ppm(0.62), {"from": owner}))
    model_id = tx.return_value
    _show("deposit", market.deposit(model_id, 100 * UNIT, {"from": owner}))
    _show("setQuote", market.setQuote(model_id, PRICE_PER_ROW, 5_000, {"from": owner}))

    print("a proxy registers and lists 300 rows by field composition (no values, no prices)")
    _show("registerProxy", market.registerProxy("http://127.0.0.1:9001", {"from": proxy}))
    _show("publishListing", market.publishListing(
        0, 300, ["mean_radius", "mean_texture", "diagnosis"], {"from": proxy}))

    print("checkpoint 1: 300 rows locked, 120 + 80 rows used, accuracy 62 % -> 71 %: settled and paid")
    tx = _show("openCheckpoint", market.openCheckpoint(
        model_id, 300, keccak256(b"weights v0"), _ppm(0.62), {"from": hosting_node}))
    first = tx.return_value
    rows_used = {sources[0].address: 120, sources[1].address: 80}
    payouts = {address: rows * PRICE_PER_ROW for address, rows in rows_used.items()}
    payout_tree = MerkleTree([payout_leaf(first, address, amount) for address, amount in payouts.items()])
    row_hashes = [keccak256(f"row {i}".encode()) for i in range(sum(rows_used.values()))]
    rows_tree = MerkleTree([standard_leaf(h) for h in row_hashes])
    _show("commitBill", market.commitBill(
        first, payout_tree.root, rows_tree.root, len(row_hashes), sum(payouts.values()),
        {"from": hosting_node}))
    _show("settleCheckpoint", market.settleCheckpoint(first, _ppm(0.71), {"from": hosting_node}))
    for index, source in enumerate(sources):
        _show(f"claim by source {index}", market.claim(
            first, payouts[source.address], payout_tree.proof(index), {"from": source}))

    print("history: the 200 row hashes trained on are anchored on chain")
    tx = _show("anchorHistory", market.anchorHistory(
        model_id, rows_tree.root, len(row_hashes), {"from": hosting_node}))
    anchor_block = chain[tx.block_number]
    assert market.verifyAnchoredRow(model_id, 0, row_hashes[7], rows_tree.proof(7))

    print("checkpoint 2: 100 rows locked, accuracy falls to 69 %: rolled back, nobody paid")
    tx = _show("openCheckpoint", market.openCheckpoint(
        model_id, 100, keccak256(b"weights v1"), _ppm(0.71), {"from": hosting_node}))
    second = tx.return_value
    _show("rollbackCheckpoint", market.rollbackCheckpoint(second, _ppm(0.69), {"from": hosting_node}))

    model = market.getModel(model_id).dict()
    paid = sum(payouts.values())
    escrowed = 100 * UNIT
    print("\nsummary")
    print(f"  checkpoint {first}: {market.getCheckpoint(first).dict()['state']} (3 = settled), paid {paid / UNIT} tokens")
    print(f"  checkpoint {second}: {market.getCheckpoint(second).dict()['state']} (4 = rolled back), paid 0")
    for index, source in enumerate(sources):
        print(f"  source {index} {source.address}: {token.balanceOf(source) / UNIT} tokens")
    print(f"  history anchor 0: {rows_tree.root.hex()} ({len(row_hashes)} rows) "
          f"block {anchor_block.number} {anchor_block.hash.hex()}")
    print(f"  best accuracy {model['bestAccuracy'] / 1e4:.2f} %, escrow left {model['escrow'] / UNIT} tokens")
    # Reconciliation: every escrowed token is paid out, or still escrowed (the rolled-back budget
    # and the settled checkpoint's unused rows went back to escrow).
    assert escrowed == paid + model["escrow"], "escrow does not reconcile"
    assert token.balanceOf(market) == model["escrow"], "market holds tokens nobody is owed"
    print(f"  reconciliation: escrowed {escrowed / UNIT} = paid {paid / UNIT} + still escrowed {model['escrow'] / UNIT}  OK")
