// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @title PayoutTree
/// @notice A bill's payout tree built the way the market verifies it (OpenZeppelin MerkleProof: sorted
///         pairs), written out independently of the contract: leaves in order, pairs hashed level by level,
///         an odd node carried up unhashed.
library PayoutTree {
    /// @notice The market's payout leaf: keccak256(keccak256(abi.encode(checkpointId, account, amount))).
    function leaf(uint256 checkpointId, address account, uint256 amount) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(checkpointId, account, amount))));
    }

    /// @notice The root over `leaves` (at least one).
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = _copy(leaves);
        uint256 width = level.length;
        while (width > 1) {
            width = _up(level, width);
        }
        return level[0];
    }

    /// @notice The siblings from leaf `index` up to the root.
    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory siblings) {
        bytes32[] memory level = _copy(leaves);
        siblings = new bytes32[](256);
        uint256 found;
        uint256 width = level.length;
        while (width > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < width) siblings[found++] = level[sibling];
            width = _up(level, width);
            index /= 2;
        }
        assembly ("memory-safe") {
            mstore(siblings, found)
        }
    }

    /// @dev Replaces the first `width` nodes of `level` by their parents, in place; returns the parents' count.
    function _up(bytes32[] memory level, uint256 width) private pure returns (uint256 parents) {
        for (uint256 i = 0; i < width; i += 2) {
            level[parents++] = i + 1 < width ? Hashes.commutativeKeccak256(level[i], level[i + 1]) : level[i];
        }
    }

    function _copy(bytes32[] memory nodes) private pure returns (bytes32[] memory out) {
        out = new bytes32[](nodes.length);
        for (uint256 i = 0; i < nodes.length; ++i) {
            out[i] = nodes[i];
        }
    }
}
