from proxy_fixtures import columns, serve, table  # noqa: F401
