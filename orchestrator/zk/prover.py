"""Compile, set up, prove and verify the accuracy circuit with ezkl (docs/zk.md).

Visibility (the public instances of every proof, in this order): the Poseidon hash of the chunk's inputs x,
the Poseidon hash of its labels y (the test set stays private, its commitment is public), the Poseidon hash
of the circuit's parameters (the weights commitment), then the outputs `correct` and `rows` in the clear.
Every file lives in the circuit's own folder; nothing is cached elsewhere.
"""
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ProveTimeout, ZkError

from .circuit import Chunk

# fixed-point scale 2**13 for inputs and weights: what calibration picked for 30-16-2 with no loss
SCALE = 13
# range checks decompose into 3 legs of 2**10: a 1,024-row lookup table instead of ezkl's default 2**14, which
# alone forced logrows 15 on circuits that need 2**13 rows (docs/zk.md, "Costs"); 2**30 still covers any logit
DECOMP_BASE, DECOMP_LEGS = 1024, 3
MAX_LOGROWS = 22
# the package's root: the prove child imports this checkout's orchestrator, whatever the caller's directory
_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Circuit:
    """A compiled accuracy circuit and its keys, all under `folder`, or the keys under `keys` when given: a
    checkpoint's circuit (its own weights compiled) proves with its model's one proving key (docs/zk.md, "One
    circuit per model")."""
    folder: Path
    srs: Path
    logrows: int
    keys: Path | None = None

    @property
    def graph(self) -> Path:
        return self.folder / "accuracy.onnx"

    @property
    def settings(self) -> Path:
        return self.folder / "settings.json"

    @property
    def compiled(self) -> Path:
        return self.folder / "accuracy.ezkl"

    @property
    def vk(self) -> Path:
        return (self.keys or self.folder) / "vk.key"

    @property
    def pk(self) -> Path:
        return (self.keys or self.folder) / "pk.key"


@dataclass(frozen=True)
class Commitments:
    """The public instances of a chunk's evaluation, as field elements (ints below the BN254 modulus)."""
    inputs: int
    labels: int
    weights: int
    correct: int
    rows: int


@dataclass(frozen=True)
class ChunkProof:
    commitments: Commitments
    proof: Path
    witness: Path


def _ezkl():
    import ezkl
    return ezkl


def _write_input(chunk: Chunk, path: Path) -> Path:
    path.write_text(json.dumps({"input_data": [chunk.x.ravel().tolist(), chunk.y.ravel().tolist()]}))
    return path


def _felt(hex_le: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_le), "little")


def settings_for(graph: bytes, sample: Chunk, folder: Path) -> int:
    """Writes the circuit's settings into `folder` (fixed scales, logrows from ezkl's calibration on `sample`)
    and answers the logrows the SRS must cover."""
    ezkl = _ezkl()
    folder.mkdir(parents=True, exist_ok=True)
    paths = Circuit(folder, Path(), 0)  # the file names alone: no SRS nor logrows yet
    paths.graph.write_bytes(graph)
    args = ezkl.PyRunArgs()
    args.input_visibility, args.param_visibility, args.output_visibility = "hashed", "hashed", "public"
    args.input_scale = args.param_scale = SCALE
    args.decomp_base, args.decomp_legs = DECOMP_BASE, DECOMP_LEGS
    if not ezkl.gen_settings(str(paths.graph), str(paths.settings), py_run_args=args):
        raise ZkError("ezkl could not generate settings for the accuracy graph")
    sample_path = _write_input(sample, folder / "calibration.json")
    # scales pinned: the weights commitment is the hash of weights quantised at SCALE, fixed for the model's life
    ezkl.calibrate_settings(str(sample_path), str(paths.graph), str(paths.settings), "resources",
                            scales=[SCALE], max_logrows=MAX_LOGROWS)
    return int(json.loads(paths.settings.read_text())["run_args"]["logrows"])


def build(folder: Path, srs: Path) -> Circuit:
    """Compiles the graph settings_for wrote and runs the key setup with `srs`; answers the circuit."""
    ezkl = _ezkl()
    logrows = int(json.loads((folder / "settings.json").read_text())["run_args"]["logrows"])
    circuit = Circuit(folder, srs, logrows)
    if not ezkl.compile_circuit(str(circuit.graph), str(circuit.compiled), str(circuit.settings)):
        raise ZkError("ezkl could not compile the accuracy circuit")
    try:
        ok = ezkl.setup(str(circuit.compiled), str(circuit.vk), str(circuit.pk), str(srs))
    except Exception as e:  # ezkl raises bare RuntimeErrors, e.g. for an SRS with too few points
        raise ZkError(f"ezkl setup failed: {e}") from None
    if not ok:
        raise ZkError("ezkl setup failed")
    return circuit


def compile_weights(graph: bytes, settings: Path, folder: Path, srs: Path, keys: Path) -> Circuit:
    """The circuit of `graph` (an accuracy graph of other weights, same shapes) compiled under the model's
    `settings` into `folder`, proving and verifying with the keys under `keys`: no calibration, no setup, since
    the weights are hashed advice, not part of the keys (docs/zk.md, "One circuit per model")."""
    ezkl = _ezkl()
    folder.mkdir(parents=True, exist_ok=True)
    logrows = int(json.loads(settings.read_text())["run_args"]["logrows"])
    circuit = Circuit(folder, srs, logrows, keys)
    circuit.graph.write_bytes(graph)
    if settings.resolve() != circuit.settings.resolve():
        circuit.settings.write_bytes(settings.read_bytes())
    if not ezkl.compile_circuit(str(circuit.graph), str(circuit.compiled), str(circuit.settings)):
        raise ZkError("ezkl could not compile the accuracy circuit of these weights under the model's settings")
    return circuit


def evaluate(circuit: Circuit, chunk: Chunk, name: str) -> tuple[Commitments, Path]:
    """The chunk's witness (no proof): its commitments and the correct count, as the circuit computes them."""
    ezkl = _ezkl()
    witness_path = circuit.folder / f"{name}.witness.json"
    try:
        witness = ezkl.gen_witness(str(_write_input(chunk, circuit.folder / f"{name}.input.json")),
                                   str(circuit.compiled), str(witness_path))
    except Exception as e:
        raise ZkError(f"chunk {name}: ezkl could not evaluate it: {e}") from None
    inputs, labels = witness["processed_inputs"]["poseidon_hash"]
    (weights,) = witness["processed_params"]["poseidon_hash"]
    correct, rows = (_felt(value) for (value,) in witness["outputs"])
    return Commitments(_felt(inputs), _felt(labels), _felt(weights), correct, rows), witness_path


def prove(circuit: Circuit, chunk: Chunk, name: str, *, timeout: float | None = None) -> ChunkProof:
    """Proves the chunk's evaluation; the proof file holds the public instances it was made for. ezkl's prove
    runs in a child process (prove_child.py), killed past `timeout` seconds (None: no limit) with ProveTimeout."""
    commitments, witness = evaluate(circuit, chunk, name)
    proof = circuit.folder / f"{name}.proof.json"
    files = (witness, circuit.compiled, circuit.pk, proof, circuit.srs)
    try:
        # run() kills the child when the deadline passes and waits for it, so no prover is left behind
        done = subprocess.run([sys.executable, "-m", "orchestrator.zk.prove_child", *(str(f.resolve()) for f in files)],
                              cwd=_ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        proof.unlink(missing_ok=True)
        raise ProveTimeout(f"chunk {name}: ezkl's prove ran past its time limit of {timeout:g} s and was stopped "
                           f"(ezkl 23.0.5 can hang with every thread waiting); nothing was proven", timeout or 0.0) \
            from None
    if done.returncode != 0:
        raise ZkError(f"chunk {name}: ezkl could not prove it: {done.stderr.strip()}")
    return ChunkProof(commitments, proof, witness)


def instances(proof: Path) -> tuple[int, ...]:
    """The public instances a proof file was made for, in circuit order (module docstring)."""
    (values,) = json.loads(proof.read_text())["instances"]
    return tuple(_felt(value) for value in values)


def write_proof(path: Path, proof: bytes, values: Sequence[int]) -> Path:
    """A proof file ezkl's verify reads, from the proof bytes and the instances to check them with (a proof taken
    from a transaction's calldata, whose instances the verifier contract was given beside it)."""
    path.write_text(json.dumps({"proof": list(proof),
                                "instances": [[v.to_bytes(32, "little").hex() for v in values]]}))
    return path


def verify(circuit: Circuit, proof: Path) -> bool:
    """True when the proof verifies against the circuit's verifying key; a tampered proof answers False."""
    try:
        return bool(_ezkl().verify(str(proof), str(circuit.settings), str(circuit.vk), str(circuit.srs)))
    except Exception:  # ezkl raises on a proof that fails to verify rather than answering False
        return False


def accuracy_ppm(proofs: list[Commitments]) -> int:
    """Correct rows over counted rows across a test set's chunks, in ppm rounded down (the contract's rule)."""
    correct, rows = sum(p.correct for p in proofs), sum(p.rows for p in proofs)
    if rows == 0:
        raise ZkError("no test rows in the proofs")
    return correct * 1_000_000 // rows
