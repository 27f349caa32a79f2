"""A deliberately dishonest source proxy for the demo: the real proxy service, except that it shifts the
sub-model outputs of every third row it is asked about. Redundancy (claim 9) must catch it: rows it shares
with an honest proxy disagree and are dropped from training and from the bill.

    python -m scripts.lying_proxy --db lying.sqlite --port 8703   (same options as python -m orchestrator.proxy)
"""
import sys

import numpy as np

from orchestrator.proxy.cli import main
from orchestrator.proxy.holder import Outputs
from orchestrator.proxy.vault import Vault

TAMPER_EVERY = 3
TAMPER_SHIFT = 0.25


class TamperingVault(Vault):
    def answer_evaluate(self, call, submodels):  # what the service calls (Vault.evaluate routes here too)
        honest = super().answer_evaluate(call, submodels)
        z = np.array(honest.z)
        tampered = np.asarray(call.row_ids) % TAMPER_EVERY == 0
        z[tampered] += TAMPER_SHIFT
        return Outputs(z=z, labels=honest.labels)


if __name__ == "__main__":
    sys.exit(main(prog="python -m scripts.lying_proxy", vault_class=TamperingVault))
