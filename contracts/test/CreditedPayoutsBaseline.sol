// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title CreditedPayoutsBaseline
/// @notice Gas baseline only (scripts/gas_table.py): the payout design the market does NOT use. Settling
///         would credit every billed source's balance in a loop (one storage write and one event per
///         source) and each source would withdraw its balance later. The market instead stores one
///         Merkle root per bill and lets each source claim its own leaf.
contract CreditedPayoutsBaseline {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    mapping(address account => uint256) public credited;

    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    constructor(IERC20 token_) {
        token = token_;
    }

    /// @notice The part of a settle that credited balances would add: a loop over the bill's sources.
    function credit(address[] calldata accounts, uint256[] calldata amounts) external {
        for (uint256 i = 0; i < accounts.length; ++i) {
            credited[accounts[i]] += amounts[i];
            emit Credited(accounts[i], amounts[i]);
        }
    }

    /// @notice A source withdraws its credited balance.
    function withdraw() external {
        uint256 amount = credited[msg.sender];
        credited[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }
}
