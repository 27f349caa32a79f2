"""The accuracy circuit's verifier on an EVM chain: ezkl's reusable Halo2 verifier plus the circuit's verifying-key
artifact (VKA), compiled with the project's solc-js (docs/zk.md, "On chain").

The reusable verifier is one contract for every circuit (10,917 bytes deployed, under the 24,576-byte limit,
where a circuit-specific verifier is 30,460); each circuit's VKA is registered once (`registerVka`, keyed by the
keccak-256 of its words) and passed with every `verifyProof(proof, instances, vka)` call.
"""
import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ZkError

from .prover import Circuit

CONTRACT = "Halo2VerifierReusable"
EVM_VERSION = "shanghai"  # brownie-config.yaml's target
CODE_SIZE_LIMIT = 24_576  # EIP-170


@dataclass(frozen=True)
class CompiledVerifier:
    abi: list
    bytecode: bytes
    deployed_size: int


@dataclass(frozen=True)
class ProofCall:
    """What `verifyProof` takes for one proof: the proof bytes and its public instances, in circuit order."""
    proof: bytes
    instances: tuple[int, ...]


def _run(function, *args):
    # ezkl 23's EVM generators answer awaitables and must be called inside a running event loop
    async def wait():
        return await function(*args)
    return asyncio.run(wait())


def write_verifier(circuit: Circuit, path: Path) -> Path:
    """Writes the reusable verifier's Solidity source to `path`. ezkl then asks the network for a native solc
    to write the ABI with; that fails offline and is not needed (compile() builds the ABI), so a written source
    file is success."""
    import ezkl
    try:
        _run(ezkl.create_evm_verifier, str(circuit.vk), str(circuit.settings), str(path),
             str(path.with_suffix(".abi")), str(circuit.srs), True)
    except RuntimeError as e:
        if not path.is_file():
            raise ZkError(f"ezkl could not write the verifier: {e}") from None
    return path


def write_vka(circuit: Circuit, path: Path) -> tuple[bytes, ...]:
    """Writes the circuit's VKA to `path` and answers its 32-byte words, as registerVka and verifyProof take them."""
    import ezkl
    try:
        _run(ezkl.create_evm_vka, str(circuit.vk), str(circuit.settings), str(path), str(circuit.srs))
    except RuntimeError as e:
        raise ZkError(f"ezkl could not write the verifying-key artifact: {e}") from None
    return vka_words(path.read_bytes())


def vka_words(raw: bytes) -> tuple[bytes, ...]:
    """The words of a VKA file: ezkl writes a little-endian u64 word count, then the words."""
    count = int.from_bytes(raw[:8], "little")
    if len(raw) != 8 + 32 * count:
        raise ZkError(f"a VKA file of {len(raw)} bytes does not hold the {count} words its header announces")
    return tuple(raw[8 + 32 * i:40 + 32 * i] for i in range(count))


def proof_call(proof_path: Path) -> ProofCall:
    document = json.loads(proof_path.read_text())
    (instances,) = document["instances"]
    return ProofCall(bytes.fromhex(document["hex_proof"].removeprefix("0x")),
                     tuple(int.from_bytes(bytes.fromhex(v), "little") for v in instances))


def solc() -> Path:
    """The project's solc-js wrapper (bin/env sets SOLCX_BINARY_PATH; docs/toolchain.md)."""
    root = os.environ.get("SOLCX_BINARY_PATH") or str(Path(__file__).resolve().parents[2] / "toolchain" / "solcx")
    return Path(root) / "solc-v0.8.28"


def compile_verifier(source: Path) -> CompiledVerifier:
    """Compiles the verifier with the project's compiler, optimiser as brownie-config.yaml sets it; refuses
    bytecode over the EIP-170 limit, which no public chain deploys."""
    request = {"language": "Solidity", "sources": {source.name: {"content": source.read_text()}},
               "settings": {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": EVM_VERSION,
                            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object",
                                                            "evm.deployedBytecode.object"]}}}}
    done = subprocess.run([str(solc()), "--standard-json"], input=json.dumps(request), capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise ZkError(f"solc failed on {source}: {done.stderr.strip()[:500]}")
    output = json.loads(done.stdout)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise ZkError(f"solc refused {source}: {errors[0][:500]}")
    contract = output["contracts"][source.name][CONTRACT]
    deployed = bytes.fromhex(contract["evm"]["deployedBytecode"]["object"])
    if len(deployed) > CODE_SIZE_LIMIT:
        raise ZkError(f"the verifier is {len(deployed)} bytes deployed, over the {CODE_SIZE_LIMIT}-byte limit")
    return CompiledVerifier(contract["abi"], bytes.fromhex(contract["evm"]["bytecode"]["object"]), len(deployed))
