"""The amounts and weights hashes the chain tests trade at (a module of its own: `conftest` names collide across
folders)."""
UNIT = 10**18
INITIAL_WEIGHTS = b"\x05" * 32
TRAINED_WEIGHTS = b"\x08" * 32
