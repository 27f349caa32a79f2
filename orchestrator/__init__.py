"""SplitLedger orchestrator: the hosting node, data sources and source proxies."""
