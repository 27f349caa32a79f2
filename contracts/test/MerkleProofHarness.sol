// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title MerkleProofHarness
/// @notice Test-only window onto OpenZeppelin's MerkleProof, so off-chain trees are checked
///         against the exact on-chain rules rather than a re-implementation of them.
contract MerkleProofHarness {
    /// @notice Whether `leaf` is in the tree of `root` according to OpenZeppelin's MerkleProof.
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice The root that `proof` and `leaf` hash up to.
    function processProof(bytes32[] calldata proof, bytes32 leaf) external pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leaf);
    }
}
