"""A rehearsal of a public testnet, on this machine: an anvil with Sepolia's chain id (11155111) mining a block a
second, added to brownie as a *live* network (not `development`) in a brownie data folder of the test's own (HOME
points brownie at it; ~/.brownie is never touched), written as `brownie networks add` writes it, a deployer from an eth-account keystore imported with
`brownie accounts import`, `brownie run scripts/deploy.py --network ...` at a confirmation depth of 2, then a
short story through the orchestrator's client at depth 1 with EIP-1559 fees, the explorer over it, and
`brownie run scripts/verify.py`, whose standard-JSON input this test recompiles with the project's solc-js and
holds against the deployed code as a verifier would. No traffic leaves this machine: ETHERSCAN_TOKEN is unset.

Everything is played once for the module; each test checks one thing.
"""
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import brownie as brownie_package
import pytest
import yaml
from chain_terms import INITIAL_WEIGHTS, TRAINED_WEIGHTS, UNIT
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from web3 import Web3

from orchestrator.chain.client import MarketClient, TxResult, connect
from orchestrator.chain.deployment import load_deployment
from orchestrator.chain.devchain import local_node
from orchestrator.chain.devnet import ANVIL_DEV_KEY
from orchestrator.chain.sending import send_transaction
from orchestrator.explorer.app import create_app
from orchestrator.explorer.queries import totals
from orchestrator.explorer.service import Explorer
from orchestrator.hashing.merkle import MerkleTree, payout_leaf

ROOT = Path(__file__).resolve().parents[2]
SOLC = ROOT / "toolchain" / "solcx" / "solc-v0.8.28"
BROWNIE = Path(sys.executable).parent / "brownie"  # the venv's command line
BROWNIE_DEPLOYMENTS = ROOT / "build" / "deployments"
SEPOLIA = 11155111
NETWORK = "sepolia-rehearsal"
ACCOUNT_ID = "rehearsal-deployer"
PASSWORD = "correct horse battery staple"
DEPLOY_DEPTH, STORY_DEPTH = 2, 1
CHECKPOINT_TIMEOUT = 7 * 24 * 3600  # scripts/deploy.py's default


@dataclass
class Sent:
    """A transaction the story sent, and the chain's head when the client returned from it."""

    result: TxResult
    head_on_return: int


@dataclass
class Rehearsal:
    rpc: str
    w3: Web3
    home: Path  # the HOME brownie ran with
    deployer: LocalAccount
    record: dict
    deployment_file: Path
    verify_dir: Path
    story: dict[str, Sent]
    checkpoint_id: int
    paid: int
    source: str


def brownie(*args, env, stdin=None) -> str:
    run = subprocess.run([str(BROWNIE), *args], cwd=ROOT, env=env, input=stdin,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"brownie {' '.join(args)}:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run.stdout


def play_story(w3, deployment, deployer) -> tuple[dict[str, Sent], int, int, str]:
    """The deployer (who holds the test token) registers and funds a model; a host opens, bills and settles a
    checkpoint; a source claims. Every call waits STORY_DEPTH blocks."""
    host, source = Account.create(), Account.create()
    for account in (host, source):
        send_transaction(w3, deployer, {"to": account.address, "value": UNIT, "gas": 21_000}, what="gas money",
                         depth=STORY_DEPTH, poll=0.1)

    def client(account):
        return MarketClient(w3, deployment, account, confirmations=STORY_DEPTH, poll_latency=0.1)

    owner, node, seller = client(deployer), client(host), client(source)
    sent: dict[str, Sent] = {}

    def record(name, result):
        sent[name] = Sent(result, w3.eth.block_number)
        return result

    model_id, registered = owner.register_model(host.address, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32,
                                                b"\x04" * 32, INITIAL_WEIGHTS, 500_000)
    record("registerModel", registered)
    record("deposit", owner.approve_and_deposit(model_id, 100 * UNIT))
    record("setQuote", owner.set_quote(model_id, UNIT, 0))
    checkpoint_id, opened = node.open_checkpoint(model_id, 10, INITIAL_WEIGHTS, 500_000)
    record("openCheckpoint", opened)
    paid = 4 * UNIT
    tree = MerkleTree([payout_leaf(checkpoint_id, source.address, paid)])
    record("commitBill", node.commit_bill(checkpoint_id, tree.root, b"\x06" * 32, 4, paid))
    record("settleCheckpoint", node.settle(checkpoint_id, 600_000, TRAINED_WEIGHTS))
    record("claim", seller.claim(checkpoint_id, paid, tree.proof(0)))
    return sent, checkpoint_id, paid, source.address


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> Rehearsal:
    home = tmp_path_factory.mktemp("home")  # brownie's data folder is $HOME/.brownie
    deployments = tmp_path_factory.mktemp("deployments")
    deployer = Account.create()
    keystore = home / "deployer-keystore.json"
    keystore.write_text(json.dumps(Account.encrypt(deployer.key, PASSWORD)))
    with local_node("anvil", chain_id=SEPOLIA, options=["--block-time", "1"]) as rpc:
        w3 = connect(rpc)
        # The faucet of a testnet: anvil's funded development account, on this chain as on any anvil.
        send_transaction(w3, Account.from_key(ANVIL_DEV_KEY), {"to": deployer.address, "value": 100 * UNIT,
                                                               "gas": 21_000}, what="testnet ether", poll=0.1)
        env = {k: v for k, v in os.environ.items() if k != "ETHERSCAN_TOKEN"}
        env.update(HOME=str(home), SPLITLEDGER_DEPLOYER=ACCOUNT_ID, SPLITLEDGER_DEPLOYER_PASSWORD=PASSWORD,
                   SPLITLEDGER_DEPLOYMENTS_DIR=str(deployments), SPLITLEDGER_CONFIRMATIONS=str(DEPLOY_DEPTH),
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        add_live_network(home, NETWORK, rpc, SEPOLIA)
        brownie("accounts", "import", ACCOUNT_ID, str(keystore), env=env, stdin=PASSWORD + "\n")
        recorded_before = brownie_deployments(SEPOLIA)
        try:
            brownie("run", "scripts/deploy.py", "--network", NETWORK, env=env)
            deployment_file = deployments / f"{NETWORK}.json"
            record = json.loads(deployment_file.read_text())
            story, checkpoint_id, paid, source = play_story(w3, load_deployment(deployment_file), deployer)
            brownie("run", "scripts/verify.py", "--network", NETWORK, env=env)
            yield Rehearsal(rpc, w3, home, deployer, record, deployment_file, deployments / "verify" / NETWORK,
                            story, checkpoint_id, paid, source)
        finally:
            forget_brownie_deployments(SEPOLIA, brownie_deployments(SEPOLIA) - recorded_before)


def add_live_network(home: Path, network_id: str, rpc: str, chain_id: int) -> None:
    """What `brownie networks add Ethereum ID host=RPC chainid=N` writes, in the brownie data folder under
    `home`: brownie's own network list with one more live network (a brownie process costs seconds to start)."""
    config_file = home / ".brownie" / "network-config.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((Path(brownie_package.__file__).parent / "data" / "network-config.yaml").read_text())
    ethereum = next(group for group in config["live"] if group["name"] == "Ethereum")
    ethereum["networks"].append({"name": network_id, "id": network_id, "host": rpc, "chainid": chain_id})
    config_file.write_text(yaml.safe_dump(config))


def brownie_deployments(chain_id: int) -> set[str]:
    """The addresses brownie has deployment records of on `chain_id` (build/deployments/<chain id>/)."""
    return {path.stem for path in (BROWNIE_DEPLOYMENTS / str(chain_id)).glob("*.json")}


def forget_brownie_deployments(chain_id: int, made: set[str]) -> None:
    """brownie records every live deployment in the project's build/deployments/<chain id>/ and map.json, and
    on its next connection to that chain id looks each one up: these contracts died with the rehearsal's anvil,
    so the records brownie made during it are removed (and only those: a real Sepolia deployment's stay)."""
    folder = BROWNIE_DEPLOYMENTS / str(chain_id)
    for address in made:
        (folder / f"{address}.json").unlink()
    map_file = BROWNIE_DEPLOYMENTS / "map.json"
    if made and map_file.exists():
        mapping = json.loads(map_file.read_text())
        kept = {name: [a for a in addresses if a not in made]
                for name, addresses in mapping.get(str(chain_id), {}).items()}
        mapping[str(chain_id)] = {name: addresses for name, addresses in kept.items() if addresses}
        if not mapping[str(chain_id)]:
            del mapping[str(chain_id)]
        map_file.write_text(json.dumps(mapping, indent=2, sort_keys=True))
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()


def network_ids(config_file: Path) -> tuple[dict[str, dict], set[str]]:
    """brownie's network config: ({live network id: its settings}, {development network ids})."""
    config = yaml.safe_load(config_file.read_text())
    return ({n["id"]: n for group in config["live"] for n in group["networks"]},
            {n["id"] for n in config["development"]})


def test_the_rehearsal_is_a_live_brownie_network_with_a_testnet_chain_id_in_a_data_folder_of_its_own(rehearsal):
    live, development = network_ids(rehearsal.home / ".brownie" / "network-config.yaml")
    assert int(live[NETWORK]["chainid"]) == SEPOLIA and live[NETWORK]["host"] == rehearsal.rpc
    assert NETWORK not in development
    assert rehearsal.record["network"] == NETWORK and rehearsal.record["chain_id"] == SEPOLIA
    # The user's own brownie data folder has neither the network nor the account.
    users_folder = Path.home() / ".brownie"
    if (users_folder / "network-config.yaml").exists():
        assert NETWORK not in network_ids(users_folder / "network-config.yaml")[0]
    assert not (users_folder / "accounts" / f"{ACCOUNT_ID}.json").exists()


def test_the_deployment_file_records_the_keystore_deployer_and_the_contracts_on_chain(rehearsal):
    record, w3 = rehearsal.record, rehearsal.w3
    assert record["deployer"] == rehearsal.deployer.address
    assert record["confirmations"] == DEPLOY_DEPTH
    for address_key, tx_key in (("market", "market_deploy_tx"), ("token", "token_deploy_tx")):
        receipt = w3.eth.get_transaction_receipt(record[tx_key])
        assert receipt["contractAddress"] == record[address_key] and receipt["from"] == rehearsal.deployer.address
        assert w3.eth.get_code(record[address_key])
    assert w3.eth.get_transaction_receipt(record["market_deploy_tx"])["blockNumber"] == record["market_deploy_block"]
    market = w3.eth.contract(address=record["market"], abi=load_deployment(rehearsal.deployment_file).abi(
        "SplitLedgerMarket"))
    assert market.functions.token().call() == record["token"]
    assert market.functions.checkpointTimeout().call() == record["checkpoint_timeout"] == CHECKPOINT_TIMEOUT


def test_every_transaction_pays_eip1559_fees_over_the_base_fee_of_its_block(rehearsal):
    w3 = rehearsal.w3
    hashes = [rehearsal.record["token_deploy_tx"], rehearsal.record["market_deploy_tx"],
              *(sent.result.tx_hash for sent in rehearsal.story.values())]
    for tx_hash in hashes:
        tx, receipt = w3.eth.get_transaction(tx_hash), w3.eth.get_transaction_receipt(tx_hash)
        base_fee = w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]
        assert tx["type"] == 2 and tx["chainId"] == SEPOLIA
        assert tx["maxFeePerGas"] >= receipt["effectiveGasPrice"] >= base_fee > 0


def test_the_client_returns_from_each_call_only_at_its_confirmation_depth(rehearsal):
    for name, sent in rehearsal.story.items():
        assert sent.head_on_return >= sent.result.block_number + STORY_DEPTH, name
        assert rehearsal.w3.eth.get_block(sent.result.block_number)["hash"].hex() in sent.result.block_hash, name


def test_the_story_settles_and_pays_the_source_on_the_live_network(rehearsal):
    client = MarketClient(rehearsal.w3, load_deployment(rehearsal.deployment_file))
    assert client.checkpoint(rehearsal.checkpoint_id)["state"] == "settled"
    assert client.balance_of(rehearsal.source) == rehearsal.paid


def test_the_explorer_shows_the_deployment_file_and_the_story(rehearsal, tmp_path):
    explorer = Explorer(rehearsal.rpc, rehearsal.deployment_file, tmp_path)
    with explorer.session().store.read() as db:
        seen = totals(db)
    assert (seen["models"], seen["settled"], seen["claimed"]) == (1, 1, rehearsal.paid)
    overview = TestClient(create_app(explorer)).get("/")
    assert overview.status_code == 200
    for fact in (rehearsal.record["market"], rehearsal.record["token"], NETWORK):
        assert fact in overview.text


def recompiled(standard_input: dict, source: str, name: str) -> dict:
    """What the project's solc-js makes of a written standard-JSON input: the contract's output."""
    run = subprocess.run([str(SOLC), "--standard-json"], input=json.dumps(standard_input), cwd=ROOT,
                         capture_output=True, text=True, check=True)
    output = json.loads(run.stdout)
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"], output["errors"]
    return output["contracts"][source][name]


def with_immutables(runtime: bytes, references: dict, deployed: bytes) -> tuple[bytes, list[bytes]]:
    """`runtime` with each immutable's placeholder (zeros, at solc's immutableReferences) filled from the
    deployed code, as verifiers do; and the filled values, for the caller to check."""
    code, values = bytearray(runtime), []
    for places in references.values():
        for place in places:
            start, end = place["start"], place["start"] + place["length"]
            assert code[start:end] == bytes(place["length"])
            code[start:end] = deployed[start:end]
            values.append(deployed[start:end])
    return bytes(code), values


@pytest.mark.parametrize("name, address_key, immutables", [
    ("SplitLedgerMarket", "market", lambda r: {Web3.to_bytes(hexstr=r["token"]).rjust(32, b"\0"),
                                               r["checkpoint_timeout"].to_bytes(32, "big")}),
    ("SplitLedgerToken", "token", lambda r: set()),
])
def test_the_written_standard_input_recompiles_to_the_deployed_runtime_code(rehearsal, name, address_key, immutables):
    folder = rehearsal.verify_dir / name
    standard = json.loads((folder / "standard-input.json").read_text())
    facts = json.loads((folder / "verification.json").read_text())
    source = facts["identifier"].split(":")[0]
    output = recompiled(standard, source, name)
    deployed = bytes(rehearsal.w3.eth.get_code(rehearsal.record[address_key]))
    runtime, values = with_immutables(bytes.fromhex(output["evm"]["deployedBytecode"]["object"]),
                                      output["evm"]["deployedBytecode"]["immutableReferences"], deployed)
    assert set(values) == immutables(rehearsal.record)
    assert runtime == deployed  # byte for byte, the metadata hash at its end included
    assert json.loads(output["metadata"]) == json.loads((folder / "metadata.json").read_text())


def test_the_verification_record_gives_an_explorer_the_compiler_settings_and_constructor_arguments(rehearsal):
    facts = json.loads((rehearsal.verify_dir / "SplitLedgerMarket" / "verification.json").read_text())
    assert facts["address"] == rehearsal.record["market"] and facts["chain_id"] == SEPOLIA
    assert facts["compiler_version"] == "0.8.28+commit.7893614a"
    assert facts["settings"]["evmVersion"] == "shanghai"
    assert facts["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert [a["value"] for a in facts["constructor_arguments_decoded"]] == [rehearsal.record["token"],
                                                                            CHECKPOINT_TIMEOUT]
    deploy_input = bytes(rehearsal.w3.eth.get_transaction(rehearsal.record["market_deploy_tx"])["input"])
    assert deploy_input.endswith(bytes.fromhex(facts["constructor_arguments"]))
    etherscan = facts["etherscan"]
    assert etherscan["contractname"] == "contracts/SplitLedgerMarket.sol:SplitLedgerMarket"
    assert etherscan["compilerversion"] == "v0.8.28+commit.7893614a"
    assert etherscan["constructorArguements"] == facts["constructor_arguments"]
