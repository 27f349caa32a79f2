"""Registering a model in verified mode (docs/zk.md, "Verified mode"): ezkl's reusable verifier deployed with
the model's circuit's VKA registered in it, then `registerVerifiedModel` with the plain terms, the circuit's
terms (VKA digest, test-set root, W0) and the proven baseline, the fixed-point accuracy of the initial weights
on the circuit's chunks, so that the gate compares proven figures on both sides."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .proving import ZkSetup, proven_baseline
from .registration import OwnerPackage, RegistrationTerms

if TYPE_CHECKING:  # web3 is the caller's
    from orchestrator.chain.client import MarketClient, TxResult


def deploy_verifier(deployer: MarketClient, setup: ZkSetup, folder: Path) -> str:
    """ezkl's reusable verifier, generated into `folder`, compiled with the project's solc-js, deployed from
    `deployer`'s account, with the circuit's VKA registered in it; answers its address."""
    from orchestrator.zk import evm
    compiled = evm.compile_verifier(evm.write_verifier(setup.circuit, folder / "Verifier.sol"))
    address = deployer.deploy(compiled.abi, compiled.bytecode)
    deployer.transact(deployer.w3.eth.contract(address, abi=compiled.abi), "registerVka", list(setup.registration.vka))
    return address


def register_verified(owner: MarketClient, hosting_node: str, package: OwnerPackage, setup: ZkSetup,
                      verifier: str) -> tuple[int, RegistrationTerms, TxResult]:
    """Registers the package's model in verified mode on `setup`'s circuit, checked by `verifier` (which holds
    its VKA): (model id, the terms, with the proven baseline in place of the float one, the receipt)."""
    from dataclasses import replace

    from orchestrator.chain.client import VerifiedTerms
    terms = replace(RegistrationTerms.of(package), baseline_accuracy_ppm=proven_baseline(setup))
    zk = setup.registration
    model_id, result = owner.register_verified_model(
        hosting_node, terms.model_hash, terms.test_set_hash, terms.field_table_hash, terms.policy_hash,
        terms.initial_weights_hash, terms.baseline_accuracy_ppm,
        VerifiedTerms(verifier, zk.vka_digest, zk.test_set_root, zk.weights_commitment))
    return model_id, terms, result
