"""The zk package is JAX-free and loads ezkl only inside the functions that call it (docs/architecture.md)."""
import subprocess
import sys


def test_importing_the_zk_modules_loads_neither_jax_nor_ezkl():
    code = ("import sys, orchestrator.zk.circuit, orchestrator.zk.prover, orchestrator.zk.srs, orchestrator.zk.evm; "
            "print(sorted(m for m in ('jax', 'ezkl', 'equinox') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_importing_the_hosting_nodes_proving_modules_loads_neither_jax_nor_onnx_nor_ezkl():
    code = ("import sys, orchestrator.hosting.proving, orchestrator.hosting.owner_proofs; "
            "print(sorted(m for m in ('jax', 'ezkl', 'onnx', 'equinox') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
