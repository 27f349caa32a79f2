"""Incremental log indexing: what a sync reads, what it stores, and how it survives reorgs and restarts."""
import brownie
import pytest
from eth_abi import encode
from eth_utils import keccak
from explorer_scenario import (
    BASELINE,
    ESCROW,
    LISTED_FIELDS,
    PRICE,
    ROW_CAP,
    WEIGHTS_V0,
    WEIGHTS_V1,
    hx,
    play_demo_story,
    register_funded_model,
)

from orchestrator.errors import ChainError
from orchestrator.explorer import queries
from orchestrator.explorer.indexer import Indexer, block_ranges, fork_point
from orchestrator.explorer.ledger import ROLLED_BACK, SETTLED
from orchestrator.explorer.store import Store, cache_path

CHAIN_STATES = {1: "open", 2: "billed", 3: SETTLED, 4: ROLLED_BACK}


def event_names(store):
    with store.read() as db:
        return [r["name"] for r in db.execute("SELECT name FROM events ORDER BY block_number, log_index")]


# ---------------------------------------------------------------------- what a sync reads

def test_the_first_sync_reads_from_the_deploy_block_to_the_head(indexer, deployed, accounts):
    register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    report = indexer.sync()
    assert report.ranges == [(deployed.market.tx.block_number, brownie.chain.height)]
    assert event_names(indexer.store) == ["ModelRegistered", "EscrowDeposited", "QuoteSet"]


def test_a_second_sync_reads_only_the_blocks_mined_since_the_first(indexer, deployed, accounts):
    model_id = register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    first_head = indexer.sync().head
    deployed.market.setQuote(model_id, 2 * PRICE, 0, {"from": accounts[1]})
    report = indexer.sync()
    assert report.ranges == [(first_head + 1, brownie.chain.height)]
    assert report.events == 1
    assert event_names(indexer.store)[-1] == "QuoteSet"


def test_a_sync_with_no_new_blocks_reads_no_logs(indexer, deployed, accounts):
    register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    indexer.sync()
    report = indexer.sync()
    assert report.ranges == [] and report.events == 0


def test_logs_are_read_in_ranges_of_the_chunk_size(indexer, deployed, accounts):
    register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    indexer.chunk_size = 2
    report = indexer.sync()
    start = deployed.market.tx.block_number
    assert report.ranges == block_ranges(start, brownie.chain.height, 2)
    assert len(report.ranges) > 1


def test_a_sync_bounded_to_some_ranges_stops_there_and_the_next_goes_on(indexer, deployed, accounts):
    register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    indexer.chunk_size = 1
    partial = indexer.sync(max_ranges=2)
    assert not partial.complete and len(partial.ranges) == 2
    rest = indexer.sync()
    assert rest.complete and rest.ranges[0][0] == partial.ranges[-1][1] + 1
    assert event_names(indexer.store) == ["ModelRegistered", "EscrowDeposited", "QuoteSet"]


def test_block_ranges_cover_the_span_without_overlap():
    assert block_ranges(5, 14, 4) == [(5, 8), (9, 12), (13, 14)]
    assert block_ranges(5, 5, 4) == [(5, 5)]
    assert block_ranges(6, 5, 4) == []


# ---------------------------------------------------------------------- decoding

def test_events_are_stored_with_checksummed_addresses_hex_hashes_and_exact_integers(indexer, deployed, accounts):
    owner, node = accounts[1], accounts[2]
    model_id = register_funded_model(deployed, owner, node, accounts=accounts)
    indexer.sync()
    with indexer.store.read() as db:
        (registered,), _ = queries.events(db, 1, 0, names=["ModelRegistered"])
        (deposited,), _ = queries.events(db, 1, 0, names=["EscrowDeposited"])
    assert registered["args"] == {
        "modelId": model_id, "owner": owner.address, "hostingNode": node.address,
        "modelHash": hx(keccak(b"model file")), "testSetHash": hx(keccak(b"test set")),
        "fieldTableHash": hx(keccak(b"field table")), "policyHash": hx(keccak(b"privacy policy")),
        "weightsHash": hx(WEIGHTS_V0), "baselineAccuracy": BASELINE,
    }
    assert registered["model_id"] == model_id
    assert deposited["args"]["amount"] == ESCROW  # 10**20: wider than SQLite's integers, kept exact


def test_a_listing_keeps_its_field_names_and_their_composition_hash(indexer, deployed, accounts):
    proxy = accounts[3]
    deployed.market.registerProxy("http://proxy", {"from": proxy})
    deployed.market.publishListing(10, 50, LISTED_FIELDS, {"from": proxy})
    indexer.sync()
    with indexer.store.read() as db:
        (listing,), total = queries.listings_of(db, proxy.address, 10, 0)
    assert total == 1
    assert listing["fields"] == LISTED_FIELDS
    assert listing["composition_hash"] == hx(keccak(encode(["string[]"], [LISTED_FIELDS])))
    assert (listing["first_row_id"], listing["row_count"]) == (10, 50)


def test_an_event_is_listed_under_every_address_among_its_arguments(indexer, deployed, accounts):
    owner, node = accounts[1], accounts[2]
    register_funded_model(deployed, owner, node, accounts=accounts)
    indexer.sync()
    with indexer.store.read() as db:
        of_node, _ = queries.events(db, 10, 0, address=node.address)
        of_owner, _ = queries.events(db, 10, 0, address=owner.address)
    assert [e["name"] for e in of_node] == ["ModelRegistered"]
    assert [e["name"] for e in of_owner] == ["ModelRegistered", "EscrowDeposited"]


# ---------------------------------------------------------------------- the fold

def test_the_folded_models_and_checkpoints_match_the_contracts_views(indexer, deployed, accounts):
    story = play_demo_story(deployed, accounts)
    indexer.sync()
    market = deployed.market
    with indexer.store.read() as db:
        model = queries.model(db, story.model_id)
        checkpoints = [queries.checkpoint(db, i) for i in (story.settled, story.rolled_back)]
        totals = queries.totals(db)
    on_chain = market.getModel(story.model_id).dict()
    assert int(model["escrow"]) == on_chain["escrow"] == ESCROW - story.paid
    assert model["best_accuracy"] == on_chain["bestAccuracy"]
    assert model["checkpoint_count"] == on_chain["checkpointCount"] == 2
    assert (model["price_per_row"], model["row_cap"]) == (str(on_chain["pricePerRow"]), on_chain["rowCap"])
    assert model["open_checkpoint_id"] is None and on_chain["openCheckpointId"] == 0
    assert model["weights_hash"] == on_chain["weightsHash"] == hx(WEIGHTS_V1)
    assert model["initial_weights_hash"] == hx(WEIGHTS_V0)
    for row in checkpoints:
        chain_row = market.getCheckpoint(row["checkpoint_id"]).dict()
        assert row["state"] == CHAIN_STATES[chain_row["state"]]
        assert (row["accuracy_before"], row["accuracy_after"]) == (chain_row["accuracyBefore"],
                                                                  chain_row["accuracyAfter"])
        assert int(row["locked_budget"]) == chain_row["lockedBudget"]
        assert int(row["claimed"]) == chain_row["claimed"]
        assert (row["weights_hash"], row["weights_hash_after"]) == (chain_row["weightsHash"],
                                                                    chain_row["weightsHashAfter"])
    assert totals["paid"] == totals["claimed"] == story.paid
    assert totals["escrowed"] + totals["locked"] + totals["paid"] - totals["claimed"] == \
        deployed.token.balanceOf(market)


def test_an_anchor_records_its_block_number_and_hash(indexer, deployed, accounts):
    story = play_demo_story(deployed, accounts)
    indexer.sync()
    with indexer.store.read() as db:
        anchor = queries.anchor(db, story.model_id, 0)
    tx = story.txs["anchor"]
    assert anchor["root"] == hx(story.rows_tree.root)
    assert anchor["row_count"] == 200
    assert anchor["block_number"] == tx.block_number
    assert anchor["block_hash"] == hx(brownie.chain[tx.block_number]["hash"])


# ---------------------------------------------------------------------- reorgs and restarts

def test_blocks_replaced_by_a_reorg_are_reindexed_from_the_fork_point(indexer, deployed, accounts):
    model_id = register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    kept = indexer.sync().head
    deployed.market.setQuote(model_id, 2 * PRICE, 0, {"from": accounts[1]})
    indexer.sync()
    brownie.chain.undo()  # the quote's block is dropped...
    deployed.market.setQuote(model_id, 3 * PRICE, 7, {"from": accounts[1]})  # ...and replaced at that height
    report = indexer.sync()
    assert report.rewound_to is not None and report.rewound_to <= kept
    with indexer.store.read() as db:
        quotes, _total = queries.events(db, 10, 0, names=["QuoteSet"])
        model = queries.model(db, model_id)
    assert [q["args"]["pricePerRow"] for q in quotes] == [PRICE, 3 * PRICE]
    assert (model["price_per_row"], model["row_cap"]) == (str(3 * PRICE), 7)


def test_a_chain_that_fell_behind_the_cursor_is_rewound(indexer, deployed, accounts):
    model_id = register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    indexer.sync()
    deployed.market.setQuote(model_id, 2 * PRICE, 0, {"from": accounts[1]})
    indexer.sync()
    brownie.chain.undo()
    report = indexer.sync()
    assert report.rewound_to is not None
    assert indexer.store.cursor()[0] == brownie.chain.height
    with indexer.store.read() as db:
        assert queries.model(db, model_id)["price_per_row"] == str(PRICE)


def test_a_restarted_indexer_resumes_from_the_stored_cursor(indexer, deployed, accounts, w3, codec):
    model_id = register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    head = indexer.sync().head
    deployed.market.setQuote(model_id, 2 * PRICE, ROW_CAP, {"from": accounts[1]})
    reopened = Store(indexer.store.path, brownie.chain.id, deployed.market.address)
    again = Indexer(w3, reopened, codec, deployed.market.address, deployed.market.tx.block_number)
    assert again.sync().ranges == [(head + 1, brownie.chain.height)]


def test_a_cache_file_serves_only_the_chain_and_market_it_was_made_for(store, deployed):
    with pytest.raises(ChainError, match="market"):
        Store(store.path, brownie.chain.id, "0x" + "11" * 20)
    with pytest.raises(ChainError, match="chain_id"):
        Store(store.path, brownie.chain.id + 1, deployed.market.address)


def test_a_cache_written_by_an_older_indexer_version_is_rebuilt_not_refused(indexer, deployed, accounts, w3,
                                                                             codec):
    register_funded_model(deployed, accounts[1], accounts[2], accounts=accounts)
    indexer.sync()
    with indexer.store.write() as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    reopened = Store(indexer.store.path, brownie.chain.id, deployed.market.address)
    assert reopened.cursor() is None  # nothing of the old file is kept
    again = Indexer(w3, reopened, codec, deployed.market.address, deployed.market.tx.block_number)
    assert again.sync().ranges[0][0] == deployed.market.tx.block_number


def test_cache_files_are_named_by_chain_and_market(tmp_path):
    assert cache_path(tmp_path, 5, "0xAbC").name == "5-0xabc.sqlite3"


def test_a_deployment_whose_market_has_no_code_here_is_refused(w3, codec, tmp_path, accounts):
    nowhere = accounts[9].address  # an account: no contract code
    store = Store(cache_path(tmp_path, brownie.chain.id, nowhere), brownie.chain.id, nowhere)
    with pytest.raises(ChainError, match="no contract at the market address"):
        Indexer(w3, store, codec, nowhere, 1).sync()


def test_the_fork_point_is_the_newest_stored_block_the_chain_still_has():
    stored = [(3, "a"), (5, "b"), (8, "c"), (9, "d"), (12, "e")]
    canonical = {(3, "a"), (5, "b"), (8, "c")}
    asked = []

    def is_canonical(number, block_hash):
        asked.append(number)
        return (number, block_hash) in canonical

    assert fork_point(stored, is_canonical) == 8
    assert len(asked) <= 3  # a binary search, not a walk


def test_there_is_no_fork_point_when_no_stored_block_survived():
    assert fork_point([(3, "a"), (5, "b")], lambda n, h: False) is None
    assert fork_point([], lambda n, h: True) is None
