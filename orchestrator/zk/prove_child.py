"""One ezkl prove, in a process of its own, so that a caller can stop it at a deadline (prover.prove): ezkl
23.0.5's prove can hang with every thread waiting, and a thread stuck in native code cannot be stopped, a
process can (docs/zk.md, "Keys and zero parameters").

    python -m orchestrator.zk.prove_child WITNESS COMPILED PK PROOF SRS

Exit status 0 with the proof written; 1 with ezkl's error on stderr.
"""
import sys


def main(argv: list[str]) -> int:
    witness, compiled, pk, proof, srs = argv
    import ezkl
    try:
        ezkl.prove(witness, compiled, pk, proof, srs)
    except Exception as e:  # ezkl raises bare RuntimeErrors
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
