// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeOnTransferToken
/// @notice Test-only ERC-20 that burns 1 % of every transfer (mints are fee-free), to check that the
///         market credits what actually arrived rather than what was asked for.
contract FeeOnTransferToken is ERC20 {
    /// @notice Fee in basis points taken from every transfer between two accounts.
    uint256 public constant FEE_BPS = 100;

    /// @param initialSupply Whole supply, minted to the deployer without a fee.
    constructor(uint256 initialSupply) ERC20("Fee On Transfer", "FOT") {
        _mint(msg.sender, initialSupply);
    }

    /// @dev Burns the fee from the sender, then moves the rest; mints and burns pay no fee.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * FEE_BPS) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
