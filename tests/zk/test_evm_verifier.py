"""ezkl's reusable verifier, compiled with the project's solc-js, deploys under the EIP-170 limit on anvil,
accepts the circuit's real proof with its registered verifying-key artifact, and refuses the same proof for
another test set, other weights or another count (docs/zk.md, "On chain")."""
import pytest
from eth_utils import keccak
from web3.exceptions import ContractLogicError

from orchestrator.zk import evm

PART = {"test inputs": 0, "test labels": 1, "weights": 2, "correct count": 3, "row count": 4}


@pytest.fixture
def onchain(verifier_code, w3):
    # deployed per test: each test's chain snapshot is reverted after it, a module-wide deployment with it
    verifier, words = verifier_code
    sender = w3.eth.accounts[0]
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.contract(abi=verifier.abi, bytecode=verifier.bytecode).constructor().transact({"from": sender}))
    contract = w3.eth.contract(receipt.contractAddress, abi=verifier.abi)
    return verifier, contract, words, sender


def register(contract, words, sender, w3):
    w3.eth.wait_for_transaction_receipt(contract.functions.registerVka(list(words)).transact({"from": sender}))


def verify_call(contract, call: evm.ProofCall, words, w3) -> bytes:
    # read the raw answer: ezkl 23's verifier writes a malformed int256[] after (success, digest), so web3
    # cannot decode the whole tuple; the first two words are sound
    data = contract.encode_abi("verifyProof", [call.proof, list(call.instances), list(words)])
    return bytes(w3.eth.call({"to": contract.address, "data": data}))


def test_the_reusable_verifier_deploys_under_the_code_size_limit(onchain, w3):
    verifier, contract, _words, _sender = onchain
    assert verifier.deployed_size <= evm.CODE_SIZE_LIMIT
    assert len(w3.eth.get_code(contract.address)) == verifier.deployed_size


def test_a_real_proof_verifies_on_chain_with_its_registered_vka(onchain, proven, w3):
    _verifier, contract, words, sender = onchain
    register(contract, words, sender, w3)
    answer = verify_call(contract, evm.proof_call(proven.proof), words, w3)
    assert int.from_bytes(answer[:32], "big") == 1
    assert answer[32:64] == keccak(b"".join(words))


@pytest.mark.parametrize("part", PART)
def test_the_proof_is_refused_on_chain_for_another(part, onchain, proven, w3):
    _verifier, contract, words, sender = onchain
    register(contract, words, sender, w3)
    call = evm.proof_call(proven.proof)
    instances = list(call.instances)
    instances[PART[part]] += 1
    with pytest.raises(ContractLogicError):
        verify_call(contract, evm.ProofCall(call.proof, tuple(instances)), words, w3)


def test_a_proof_with_an_unregistered_vka_is_refused_on_chain(onchain, proven, w3):
    _verifier, contract, words, _sender = onchain
    with pytest.raises(ContractLogicError, match="VKA not registered"):
        verify_call(contract, evm.proof_call(proven.proof), words, w3)
