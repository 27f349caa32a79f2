def test_compiled_merkle_harness_deploys_on_anvil(accounts, MerkleProofHarness):
    harness = MerkleProofHarness.deploy({"from": accounts[0]})
    assert harness.verify([], b"\x11" * 32, b"\x11" * 32)
