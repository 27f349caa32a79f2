"""Ganache 7.9.2 (npm) beside the session's anvil: the tests here start their own Ganache node
(orchestrator/chain/devchain.py) and never touch brownie's chain."""
