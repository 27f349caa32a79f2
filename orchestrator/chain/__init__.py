"""The Python-to-chain boundary: deployment files, compiled ABIs, signing keys and the market client."""
