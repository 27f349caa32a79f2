// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken
/// @notice Test-only malicious ERC-20: when armed, its transfer calls back into a target (the market)
///         with prepared calldata before moving tokens, the way a hostile token would re-enter claim
///         or withdraw. Whether the re-entry reverted, and its revert data, are recorded.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public reentryCalldata;
    bool public armed;
    bool public reentryAttempted;
    bool public reentrySucceeded;
    bytes public reentryRevertData;
    /// @notice When true, a failed re-entry makes the outer transfer revert with the same data.
    bool public bubbleRevert;

    /// @param initialSupply Whole supply, minted to the deployer.
    constructor(uint256 initialSupply) ERC20("Reentrant", "RE") {
        _mint(msg.sender, initialSupply);
    }

    /// @notice Arms the hook: the next outgoing transfer from `target_` calls `target_` with `data`.
    function arm(address target_, bytes calldata data, bool bubble) external {
        target = target_;
        reentryCalldata = data;
        bubbleRevert = bubble;
        armed = true;
    }

    /// @notice Calls `target_` with `data` as this contract, so the token itself can be a payee that claims.
    function execute(address target_, bytes calldata data) external {
        (bool ok, bytes memory ret) = target_.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function _update(address from, address to, uint256 value) internal override {
        if (armed && from == target) {
            armed = false;
            reentryAttempted = true;
            (bool ok, bytes memory ret) = target.call(reentryCalldata);
            reentrySucceeded = ok;
            if (!ok) {
                reentryRevertData = ret;
                if (bubbleRevert) {
                    assembly {
                        revert(add(ret, 32), mload(ret))
                    }
                }
            }
        }
        super._update(from, to, value);
    }
}
