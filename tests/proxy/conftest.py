from bill_fixtures import held, held_vault  # noqa: F401
from proxy_fixtures import columns, serve, table  # noqa: F401
