// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title SplitLedgerToken
/// @notice A plain fixed-supply ERC-20 for local chains and tests. The market takes any ERC-20
///         at deployment; this one exists so a local demo has a token without external contracts.
/// @dev The whole supply goes to the deployer, who hands it out; no one can mint afterwards.
contract SplitLedgerToken is ERC20 {
    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    /// @param initialSupply Whole supply, in the token's smallest unit, minted to the deployer.
    constructor(string memory name_, string memory symbol_, uint256 initialSupply) ERC20(name_, symbol_) {
        _mint(msg.sender, initialSupply);
    }
}
