"""Writes what a block explorer needs to verify the contracts scripts/deploy.py deployed on the active network,
and publishes them through brownie when an explorer API key is configured.

    brownie run scripts/verify.py --network sepolia          # after scripts/deploy.py on the same network

For each contract the deployment file records a deployment transaction of (the market; the token when
deploy.py deployed it, not an existing ERC-20 named by SPLITLEDGER_TOKEN), under
deployments/verify/<network>/<Contract>/ (SPLITLEDGER_DEPLOYMENTS_DIR moves deployments/):

    standard-input.json   solc's standard-JSON input: the contract's sources (OpenZeppelin's included) under the
                          names brownie compiled them, the optimizer, EVM version and remappings. Etherscan takes
                          it as "Solidity (Standard-Json-Input)", Sourcify's solc-json endpoint too.
    metadata.json         the compiler's metadata of the contract (what Sourcify matches; its hash ends the code)
    verification.json     address, chain, contract identifier, compiler version and settings, the constructor
                          arguments (ABI-encoded hex, and decoded), the deployment transaction, and `etherscan`:
                          the form fields of Etherscan's verifysourcecode call, filled in.

The input is not brownie's flattened one (ContractContainer.get_verification_info): its sources are renamed, so
the metadata hash in the code would differ and an explorer would give a partial match at best. This one is
rebuilt from the metadata of the project's own compile (same solc-js, same settings, the sources under the names
brownie gives them), so recompiling it gives the deployed runtime code byte for byte
(tests/chain/test_live_rehearsal.py checks that against eth_getCode). The constructor arguments are the
deployment transaction's input after the creation code of that compile, which must match it exactly; anything
else stops the script before the contract's files are written.

With ETHERSCAN_TOKEN set (brownie's variable) and an `explorer` configured for the network (brownie networks
modify NETWORK explorer=...), each contract is also submitted with brownie's publish_source.
"""
import json
import os
import subprocess

from brownie import SplitLedgerMarket, SplitLedgerToken, network, web3  # type: ignore[attr-defined]  # brownie adds the project's contracts at run time
from brownie._config import CONFIG
from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

from scripts.deploy import PROJECT_ROOT, deployment_path, deployments_dir

SOLC = PROJECT_ROOT / "toolchain" / "solcx" / "solc-v0.8.28"
CONTRACT_SOURCES = {"SplitLedgerMarket": "contracts/SplitLedgerMarket.sol",
                    "SplitLedgerToken": "contracts/SplitLedgerToken.sol"}
# The deployment file's key of each contract's address and of its deployment transaction.
RECORD_KEYS = {"SplitLedgerMarket": ("market", "market_deploy_tx"), "SplitLedgerToken": ("token", "token_deploy_tx")}
CONTAINERS = {"SplitLedgerMarket": SplitLedgerMarket, "SplitLedgerToken": SplitLedgerToken}
# Etherscan's licenseType codes (https://etherscan.io/contract-license-types) for the licences used here.
LICENSE_TYPES = {"MIT": 3}
OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences",
           "metadata"]


def solc_settings():
    """The compiler settings brownie compiles the project with (brownie-config.yaml)."""
    compiler = CONFIG.settings["compiler"]
    return {"evmVersion": compiler["evm_version"], "optimizer": dict(compiler["solc"]["optimizer"]),
            "remappings": list(compiler["solc"]["remappings"] or [])}


def compile_standard_json(standard_input):
    """solc's standard-JSON output for `standard_input`, from the project's solc-js (toolchain/solcx); a compile
    error stops the script."""
    run = subprocess.run([str(SOLC), "--standard-json"], input=json.dumps(standard_input), capture_output=True,
                         text=True, cwd=PROJECT_ROOT, check=True)
    output = json.loads(run.stdout)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise SystemExit("verify: the compiler refused the input:\n" + "\n".join(errors))
    return output


def project_compile(names):
    """The project's own compile of contracts `names` (their sources, imports read from the project as brownie's
    compile reads them, brownie's settings): {name: solc's output for it, metadata included}."""
    settings = solc_settings()
    sources = {CONTRACT_SOURCES[name]: {"content": (PROJECT_ROOT / CONTRACT_SOURCES[name]).read_text()}
               for name in names}
    output = compile_standard_json({"language": "Solidity", "sources": sources,
                                    "settings": {**settings, "outputSelection": {"*": {"*": OUTPUTS}}}})
    return {name: output["contracts"][CONTRACT_SOURCES[name]][name] for name in names}


def standard_input(metadata):
    """The standard-JSON input a contract's `metadata` describes: exactly the sources it names, read from the
    project, under the settings it records."""
    recorded = {k: v for k, v in metadata["settings"].items() if k != "compilationTarget"}
    return {"language": "Solidity",
            "sources": {path: {"content": (PROJECT_ROOT / path).read_text()} for path in sorted(metadata["sources"])},
            "settings": {**recorded, "outputSelection": {"*": {"*": OUTPUTS}}}}


def constructor_arguments(name, creation_code, tx_hash):
    """The ABI-encoded constructor arguments of the deployment `tx_hash`: its input after `creation_code`."""
    tx_input = bytes(web3.eth.get_transaction(tx_hash)["input"])
    if not tx_input.startswith(creation_code):
        raise SystemExit(f"verify: the deployment {tx_hash} of {name} does not start with the creation code the "
                         f"standard input compiles to: the deployed contract was built from other sources or settings")
    return tx_input[len(creation_code):]


def decoded_arguments(abi, encoded):
    constructor = next((e for e in abi if e["type"] == "constructor"), {"inputs": []})
    types = [i["type"] for i in constructor["inputs"]]
    values = abi_decode(types, encoded)
    return [{"name": i["name"], "type": i["type"],
             "value": to_checksum_address(v) if i["type"] == "address" else v if isinstance(v, (int, str)) else str(v)}
            for i, v in zip(constructor["inputs"], values)]


def verification_record(name, address, tx_hash, chain_id, standard, metadata, args, abi):
    source = CONTRACT_SOURCES[name]
    compiler_version = metadata["compiler"]["version"]
    license_id = metadata["sources"][source].get("license", "")
    return {
        "contract": name,
        "identifier": f"{source}:{name}",
        "address": address,
        "chain_id": chain_id,
        "deploy_tx": tx_hash,
        "compiler_version": compiler_version,
        "settings": {k: v for k, v in standard["settings"].items() if k != "outputSelection"},
        "constructor_arguments": args.hex(),
        "constructor_arguments_decoded": decoded_arguments(abi, args),
        "license": license_id,
        "etherscan": {
            "module": "contract", "action": "verifysourcecode", "chainid": chain_id, "contractaddress": address,
            "codeformat": "solidity-standard-json-input", "sourceCode": "standard-input.json",
            "contractname": f"{source}:{name}", "compilerversion": f"v{compiler_version}",
            "optimizationUsed": 1 if standard["settings"]["optimizer"]["enabled"] else 0,
            "runs": standard["settings"]["optimizer"]["runs"], "evmversion": standard["settings"]["evmVersion"],
            # Etherscan's own spelling of the field.
            "constructorArguements": args.hex(), "licenseType": LICENSE_TYPES.get(license_id, 1),
        },
    }


def write_inputs(name, output, address, tx_hash, folder):
    """Writes the three files of contract `name` (solc's `output` for it) deployed at `address` by `tx_hash`."""
    metadata = json.loads(output["metadata"])
    standard = standard_input(metadata)
    args = constructor_arguments(name, bytes.fromhex(output["evm"]["bytecode"]["object"]), tx_hash)
    record = verification_record(name, address, tx_hash, web3.eth.chain_id, standard, metadata, args, output["abi"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "standard-input.json").write_text(json.dumps(standard, indent=1) + "\n")
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
    (folder / "verification.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def publish(name, address):
    """brownie's publish_source where an API key and the network's explorer are configured: whether the explorer
    verified the contract; None where nothing was submitted."""
    if not os.environ.get("ETHERSCAN_TOKEN") or not CONFIG.active_network.get("explorer"):
        return None
    container = CONTAINERS[name]
    return container.publish_source(container.at(address))


def main():
    network_name = network.show_active()
    record = json.loads(deployment_path(network_name).read_text())
    if int(record["chain_id"]) != web3.eth.chain_id:
        raise SystemExit(f"verify: {deployment_path(network_name)} is for chain {record['chain_id']}, "
                         f"the network {network_name} is chain {web3.eth.chain_id}")
    out = deployments_dir() / "verify" / network_name
    deployed = [name for name, (_, tx_key) in RECORD_KEYS.items() if tx_key in record]
    for name in RECORD_KEYS.keys() - set(deployed):
        print(f"{name}: not deployed by scripts/deploy.py here ({record[RECORD_KEYS[name][0]]}), nothing to verify")
    for name, output in project_compile(deployed).items():
        address_key, tx_key = RECORD_KEYS[name]
        written = write_inputs(name, output, record[address_key], record[tx_key], out / name)
        print(f"{name} {written['address']}: wrote {out / name} "
              f"(constructor arguments 0x{written['constructor_arguments']})")
        published = publish(name, written["address"])
        if published is None:
            print(f"{name}: not submitted to an explorer (set ETHERSCAN_TOKEN and the network's explorer to publish)")
        else:
            print(f"{name}: {'verified' if published else 'refused'} by {CONFIG.active_network['explorer']}")
