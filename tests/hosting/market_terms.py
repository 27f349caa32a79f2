"""The token amounts the hosting tests trade at (a module of its own: `conftest` names collide across folders)."""
UNIT = 10**18
PRICE = UNIT // 100
