import pytest
from chain_terms import INITIAL_WEIGHTS, TRAINED_WEIGHTS, UNIT

from orchestrator.chain.client import ErrorDecoder, MarketClient
from orchestrator.chain.deployment import load_abi, load_deployment
from orchestrator.chain.keys import account_from_env
from orchestrator.errors import ChainError, ChainRevert
from orchestrator.hashing.merkle import MerkleTree, payout_leaf


def test_owner_registers_deposits_and_quotes_with_locally_signed_transactions(funded_model):
    model_id, owner, _host = funded_model
    model = owner.model(model_id)
    assert model["owner"] == owner.address
    assert model["escrow"] == 100 * UNIT
    assert model["pricePerRow"] == UNIT
    assert model["weightsHash"] == INITIAL_WEIGHTS


def test_hosting_node_settles_and_source_claims(funded_model, signer_of):
    model_id, _owner, host = funded_model
    source = signer_of(5)
    checkpoint_id, opened = host.open_checkpoint(model_id, 10, INITIAL_WEIGHTS, 500_000)
    assert opened.event("CheckpointOpened")["lockedBudget"] == 10 * UNIT
    tree = MerkleTree([payout_leaf(checkpoint_id, source.address, 4 * UNIT)])
    host.commit_bill(checkpoint_id, tree.root, b"\x06" * 32, 4, 4 * UNIT)
    settled = host.settle(checkpoint_id, 600_000, TRAINED_WEIGHTS)
    assert settled.event("CheckpointSettled")["weightsHashAfter"] == TRAINED_WEIGHTS
    assert host.checkpoint(checkpoint_id)["weightsHashAfter"] == TRAINED_WEIGHTS
    assert host.model(model_id)["weightsHash"] == TRAINED_WEIGHTS
    before = source.balance_of(source.address)
    source.claim(checkpoint_id, 4 * UNIT, tree.proof(0))
    assert source.balance_of(source.address) - before == 4 * UNIT
    assert host.checkpoint(checkpoint_id)["state"] == "settled"


def test_reverted_call_names_the_contract_error_and_sends_nothing(funded_model, w3):
    model_id, _owner, host = funded_model
    checkpoint_id, _ = host.open_checkpoint(model_id, 10, INITIAL_WEIGHTS, 500_000)
    host.commit_bill(checkpoint_id, b"\x07" * 32, b"\x06" * 32, 1, UNIT)
    nonce_before = w3.eth.get_transaction_count(host.address)
    with pytest.raises(ChainRevert, match=r"settleCheckpoint reverted: NoAccuracyGain\(400000, 500000\)") as caught:
        host.settle(checkpoint_id, 400_000, TRAINED_WEIGHTS)
    assert caught.value.error == "NoAccuracyGain"
    assert w3.eth.get_transaction_count(host.address) == nonce_before


def test_open_from_weights_the_model_does_not_hold_names_both_hashes(funded_model):
    model_id, _owner, host = funded_model
    with pytest.raises(ChainRevert, match="WeightsHashMismatch") as caught:
        host.open_checkpoint(model_id, 10, TRAINED_WEIGHTS, 500_000)
    assert caught.value.error == "WeightsHashMismatch"
    assert caught.value.args_ == (TRAINED_WEIGHTS, INITIAL_WEIGHTS)


def test_anchor_returns_its_index_block_number_and_hash(funded_model, w3):
    model_id, _owner, host = funded_model
    index, result = host.anchor_history(model_id, b"\x09" * 32, 3)
    assert index == 0
    assert "0x" + bytes(w3.eth.get_block(result.block_number)["hash"]).hex() == result.block_hash


def test_client_refuses_a_deployment_for_another_chain(w3, deployed, tmp_path):
    path = tmp_path / "other.json"
    path.write_text(f'{{"network": "x", "chain_id": 1, "token": "{deployed[0].address}", '
                    f'"market": "{deployed[1].address}", "market_deploy_block": 0}}')
    with pytest.raises(ChainError, match="chain 1"):
        MarketClient(w3, load_deployment(path))


def test_missing_deployment_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ChainError, match="deploy first"):
        load_deployment(tmp_path / "absent.json")


def test_keys_come_from_the_environment_only():
    key = "0x" + "11" * 32
    assert account_from_env("host", {"SPLITLEDGER_HOST_KEY": key}).key.hex().endswith("11" * 32)
    with pytest.raises(ChainError, match="SPLITLEDGER_HOST_KEY"):
        account_from_env("host", {})


def test_error_decoder_reads_openzeppelin_errors_of_the_token():
    decoder = ErrorDecoder(load_abi("SplitLedgerToken"))
    selector = bytes.fromhex("e450d38c")  # ERC20InsufficientBalance(address,uint256,uint256)
    data = selector + b"\x00" * 12 + b"\x01" * 20 + (5).to_bytes(32, "big") + (9).to_bytes(32, "big")
    name, args = decoder.decode("0x" + data.hex())
    assert name == "ERC20InsufficientBalance"
    assert args[1:] == (5, 9)
