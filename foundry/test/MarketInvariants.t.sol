// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SplitLedgerMarket} from "../../contracts/SplitLedgerMarket.sol";
import {SplitLedgerToken} from "../../contracts/SplitLedgerToken.sol";
import {FeeOnTransferToken} from "../../contracts/test/FeeOnTransferToken.sol";
import {MarketHandler} from "./handlers/MarketHandler.sol";

/// @title MarketInvariantsTest
/// @notice The market's invariants (docs/reliability.md) under random call sequences that MarketHandler makes
///         over two markets (a plain and a fee-on-transfer token), six to ten models, four sources and every role.
///         Every call is checked by the handler itself (it succeeds or reverts exactly as predicted, moves exactly
///         the tokens predicted, a rollback none, and each market holds what arrived minus what it sent); the
///         market's whole books by invariant_marketKeepsItsBooks. One invariant function, so one campaign: forge
///         runs a campaign per invariant function, and runs x depth is then the whole cost.
contract MarketInvariantsTest is Test {
    uint32 internal constant SCALE = 1_000_000;

    /// @dev One market's records as the market reports them, beside what the handler expects ([id - 1], [c - 1]).
    struct Books {
        uint256 m;
        SplitLedgerMarket market;
        SplitLedgerMarket.Model[] models;
        MarketHandler.ModelMirror[] expectedModels;
        SplitLedgerMarket.Checkpoint[] checkpoints;
        MarketHandler.CheckpointMirror[] expectedCheckpoints;
        /// @dev Per checkpoint: its leaves; per claimant (handler.claimants()): successful claims, claimed flag.
        MarketHandler.Leaf[][] leaves;
        address[] claimants;
        uint256[][] claims;
        bool[][] claimedFlags;
    }

    MarketHandler internal handler;

    function setUp() public {
        SplitLedgerMarket[2] memory markets;
        markets[0] = new SplitLedgerMarket(new SplitLedgerToken("Plain", "PLN", 0), 1 days);
        markets[1] = new SplitLedgerMarket(new FeeOnTransferToken(0), 1 days);
        handler = new MarketHandler(markets, [false, true]);

        // forge draws a selector uniformly from this list; the protocol's main path is listed three times, so
        // that most runs of 50 calls reach a settle and its claims.
        bytes4[] memory selectors = new bytes4[](24);
        uint256 n;
        for (uint256 i = 0; i < 3; ++i) {
            selectors[n++] = MarketHandler.openCheckpoint.selector;
            selectors[n++] = MarketHandler.commitBill.selector;
            selectors[n++] = MarketHandler.settle.selector;
            selectors[n++] = MarketHandler.claim.selector;
        }
        selectors[n++] = MarketHandler.deposit.selector;
        selectors[n++] = MarketHandler.deposit.selector;
        selectors[n++] = MarketHandler.claimMany.selector;
        selectors[n++] = MarketHandler.rollback.selector;
        selectors[n++] = MarketHandler.withdraw.selector;
        selectors[n++] = MarketHandler.setQuote.selector;
        selectors[n++] = MarketHandler.registerModel.selector;
        selectors[n++] = MarketHandler.donate.selector;
        selectors[n++] = MarketHandler.touchClosed.selector;
        selectors[n++] = MarketHandler.warp.selector;
        selectors[n++] = MarketHandler.anchorHistory.selector;
        selectors[n++] = MarketHandler.publishListing.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// @notice Every invariant below, over both markets, from the market's records against the handler's mirror
    ///         and ghosts. forge asserts it after every call (check_interval = 1, the default profile) or at the
    ///         end of every run (check_interval = 0, the ci profile: 10,000 runs); the handler's own checks run
    ///         after every call in both.
    function invariant_marketKeepsItsBooks() public view {
        for (uint256 m = 0; m < 2; ++m) {
            Books memory books = _books(m);
            _tokenBalanceIsEscrowPlusLockedPlusUnclaimed(books);
            _recordsMatchTheMirror(books);
            _settlesAtMostOnceAndOnlyOnGain(books);
            _neverPaysMoreThanLocked(books);
            _eachPayoutClaimedOnceByItsReceiver(books);
            _rollbackPaysNobody(books);
            _weightsHashChainIsUnbroken(books);
            _oneActiveCheckpointPerModel(books);
            _anchorsAndListingsTile(books);
        }
    }

    /// @notice The handler reaches every path: one fixed pseudo-random sequence of 3,000 calls, every outcome
    ///         at least once, the invariants after every call. (The fuzzer's sequences are checked above.)
    function test_handlerReachesEveryOutcome() public {
        for (uint256 i = 0; i < 3_000; ++i) {
            uint256 seed = uint256(keccak256(abi.encode(i)));
            uint256 a = uint256(keccak256(abi.encode(seed, 1)));
            uint256 b = uint256(keccak256(abi.encode(seed, 2)));
            uint256 c = uint256(keccak256(abi.encode(seed, 3)));
            uint256 d = uint256(keccak256(abi.encode(seed, 4)));
            uint256 action = seed % 15;
            if (action == 0) handler.registerModel(a, b, c, d, seed >> 8);
            else if (action == 1) handler.deposit(a, b, c, d);
            else if (action == 2) handler.withdraw(a, b, c, d);
            else if (action == 3) handler.setQuote(a, b, c, d, seed >> 8);
            else if (action == 4) handler.donate(a, b);
            else if (action == 5) handler.openCheckpoint(a, b, c, d);
            else if (action == 6) handler.commitBill(a, b, c);
            else if (action == 7) handler.settle(a, b, c);
            else if (action == 8) handler.touchClosed(a, b, c);
            else if (action == 9) handler.rollback(a, b, c);
            else if (action == 10) handler.warp(a);
            else if (action == 11) handler.claim(a, b);
            else if (action == 12) handler.claimMany(a, b, c, d);
            else if (action == 13) handler.anchorHistory(a, b, c, d);
            else handler.publishListing(a, b, c, d);
            if (i % 100 == 0) invariant_marketKeepsItsBooks();
        }
        invariant_marketKeepsItsBooks();
        string[28] memory expected = [
            "register",
            "register refused: no weights",
            "deposit",
            "deposit refused: unknown model",
            "refused: unknown model",
            "withdraw",
            "withdraw refused",
            "quote",
            "donate",
            "open",
            "open refused",
            "open refused: weights",
            "bill",
            "bill: dishonest",
            "bill refused",
            "settle",
            "settle at the cap",
            "settle refused: no gain",
            "closed refused",
            "rollback by host",
            "rollback by owner",
            "rollback refused",
            "claim",
            "claim refused",
            "claim refused: past bill",
            "claim refused: not settled",
            "claimMany",
            "claimMany refused"
        ];
        for (uint256 i = 0; i < expected.length; ++i) {
            assertGt(handler.outcomes(bytes32(bytes(expected[i]))), 0, expected[i]);
        }
    }

    // ------------------------------------------------------------------ the invariants

    /// @dev The market holds exactly escrow + locked budgets + unclaimed payouts (+ tokens donated to it).
    function _tokenBalanceIsEscrowPlusLockedPlusUnclaimed(Books memory books) internal view {
        uint256 owed;
        for (uint256 i = 0; i < books.models.length; ++i) {
            owed += books.models[i].escrow;
        }
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            SplitLedgerMarket.Checkpoint memory checkpoint = books.checkpoints[i];
            if (_active(checkpoint.state)) {
                owed += checkpoint.lockedBudget;
            } else if (checkpoint.state == SplitLedgerMarket.CheckpointState.Settled) {
                owed += checkpoint.billTotal - checkpoint.claimed;
            }
        }
        uint256 balance = handler.token(books.m).balanceOf(address(books.market));
        assertEq(balance, owed + handler.donated(books.m), "balance = escrow + locked + unclaimed (+ donated)");
    }

    /// @dev Every model and checkpoint record equals what the handler predicted call by call.
    function _recordsMatchTheMirror(Books memory books) internal view {
        assertEq(books.models.length, handler.modelCount(books.m), "model count");
        assertEq(books.checkpoints.length, handler.checkpointCount(books.m), "checkpoint count");
        for (uint256 i = 0; i < books.models.length; ++i) {
            SplitLedgerMarket.Model memory model = books.models[i];
            MarketHandler.ModelMirror memory expected = books.expectedModels[i];
            assertEq(model.owner, expected.owner, "owner");
            assertEq(model.hostingNode, expected.host, "hosting node");
            assertEq(model.escrow, expected.escrow, "escrow");
            assertEq(model.pricePerRow, expected.price, "price");
            assertEq(model.rowCap, expected.cap, "row cap");
            assertEq(model.bestAccuracy, expected.best, "best accuracy");
            assertEq(model.weightsHash, expected.weights, "weights hash");
            assertEq(model.openCheckpointId, expected.open, "open checkpoint");
            assertEq(model.checkpointCount, expected.checkpoints, "model's checkpoints");
        }
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            SplitLedgerMarket.Checkpoint memory checkpoint = books.checkpoints[i];
            MarketHandler.CheckpointMirror memory expected = books.expectedCheckpoints[i];
            assertEq(checkpoint.modelId, expected.model, "checkpoint's model");
            assertEq(uint8(checkpoint.state), uint8(expected.state), "checkpoint state");
            assertEq(checkpoint.openedAt, expected.openedAt, "opened at");
            assertEq(checkpoint.lockedBudget, expected.locked, "locked budget");
            assertEq(checkpoint.billTotal, expected.total, "bill total");
            assertEq(checkpoint.payoutRoot, expected.root, "payout root");
            assertEq(checkpoint.claimed, expected.claimed, "claimed");
            assertEq(checkpoint.weightsHashAfter, expected.weightsAfter, "weights after");
        }
    }

    /// @dev A checkpoint settles at most once, and only on a strict gain over the model's best at its open (or on
    ///      holding 100 % at 100 %); a model's best is its baseline or its last settle's accuracy.
    function _settlesAtMostOnceAndOnlyOnGain(Books memory books) internal pure {
        uint32[] memory best = new uint32[](books.models.length + 1);
        for (uint256 i = 0; i < books.models.length; ++i) {
            best[i + 1] = books.expectedModels[i].baseline;
        }
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            SplitLedgerMarket.Checkpoint memory checkpoint = books.checkpoints[i];
            uint256 settles = books.expectedCheckpoints[i].settles;
            assertEq(checkpoint.accuracyBefore, best[checkpoint.modelId], "opened at the model's best");
            if (checkpoint.state != SplitLedgerMarket.CheckpointState.Settled) {
                assertEq(settles, 0, "an unsettled checkpoint was settled");
                continue;
            }
            assertEq(settles, 1, "settled more than once");
            bool gain = checkpoint.accuracyAfter > checkpoint.accuracyBefore;
            bool holdsCap = checkpoint.accuracyAfter == SCALE && checkpoint.accuracyBefore == SCALE;
            assertTrue(gain || holdsCap, "settled without a gain");
            best[checkpoint.modelId] = checkpoint.accuracyAfter;
        }
        for (uint256 i = 0; i < books.models.length; ++i) {
            assertEq(books.models[i].bestAccuracy, best[i + 1], "best = baseline or the last settle's accuracy");
            assertLe(books.models[i].bestAccuracy, SCALE, "best within 100 %");
        }
    }

    /// @dev Never paid more than locked: claimed <= bill total <= locked budget, each exactly rows times the price
    ///      at open; nothing is paid before a settle.
    function _neverPaysMoreThanLocked(Books memory books) internal pure {
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            SplitLedgerMarket.Checkpoint memory checkpoint = books.checkpoints[i];
            assertLe(checkpoint.claimed, checkpoint.billTotal, "claimed past the bill");
            assertLe(checkpoint.billTotal, checkpoint.lockedBudget, "bill past the lock");
            assertLe(checkpoint.billedRows, checkpoint.maxRows, "billed past the rows locked");
            assertEq(checkpoint.lockedBudget, uint256(checkpoint.maxRows) * checkpoint.pricePerRow, "lock");
            assertEq(checkpoint.billTotal, uint256(checkpoint.billedRows) * checkpoint.pricePerRow, "bill");
            if (checkpoint.state != SplitLedgerMarket.CheckpointState.Settled) {
                assertEq(checkpoint.claimed, 0, "paid before settling");
            }
        }
    }

    /// @dev Each payout is claimed at most once, only by an account a leaf names, and reaches it: every source
    ///      holds exactly what it claimed (net of the token's fee), the treasury what was withdrawn to it, and the
    ///      outsider (who tries every stolen proof) nothing.
    function _eachPayoutClaimedOnceByItsReceiver(Books memory books) internal view {
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            bool settled = books.checkpoints[i].state == SplitLedgerMarket.CheckpointState.Settled;
            for (uint256 a = 0; a < books.claimants.length; ++a) {
                uint256 claims = books.claims[i][a];
                assertLe(claims, 1, "claimed twice");
                assertEq(books.claimedFlags[i][a], claims == 1, "claimed flag");
                if (claims == 0) continue;
                assertTrue(settled, "claimed from a checkpoint not settled");
                assertTrue(_named(books.leaves[i], books.claimants[a]), "claimed by an account no leaf names");
            }
        }
        IERC20 token = handler.token(books.m);
        for (uint256 a = 0; a < books.claimants.length; ++a) {
            assertEq(token.balanceOf(books.claimants[a]), handler.receivedBy(books.m, books.claimants[a]), "claims");
        }
        assertEq(token.balanceOf(handler.outsider()), 0, "the outsider got tokens");
        assertEq(token.balanceOf(handler.treasury()), handler.receivedBy(books.m, handler.treasury()), "treasury");
    }

    /// @dev A rolled-back checkpoint paid nobody and can pay nobody: nothing claimed, no claimed flag, no claim seen.
    function _rollbackPaysNobody(Books memory books) internal pure {
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            if (books.checkpoints[i].state != SplitLedgerMarket.CheckpointState.RolledBack) continue;
            assertEq(books.checkpoints[i].claimed, 0, "a rolled back checkpoint paid");
            for (uint256 a = 0; a < books.claimants.length; ++a) {
                assertFalse(books.claimedFlags[i][a], "claimed flag on a rolled back checkpoint");
                assertEq(books.claims[i][a], 0, "claim on a rolled back checkpoint");
            }
        }
    }

    /// @dev The weights-hash chain is unbroken, read from the market's records: each model's checkpoints, in order,
    ///      opened from its registered hash or the last settled checkpoint's weightsHashAfter (which is also what the
    ///      handler saw the model hold just before each open); only a settle moved it; the model holds the last.
    function _weightsHashChainIsUnbroken(Books memory books) internal pure {
        bytes32[] memory held = new bytes32[](books.models.length + 1);
        for (uint256 i = 0; i < books.models.length; ++i) {
            held[i + 1] = books.expectedModels[i].initialWeights;
            assertNotEq(held[i + 1], bytes32(0), "registered without weights");
        }
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            SplitLedgerMarket.Checkpoint memory checkpoint = books.checkpoints[i];
            assertEq(checkpoint.weightsHash, held[checkpoint.modelId], "opened from the weights held");
            assertEq(checkpoint.weightsHash, books.expectedCheckpoints[i].openedFrom, "opened from what was seen");
            if (checkpoint.state == SplitLedgerMarket.CheckpointState.Settled) {
                assertNotEq(checkpoint.weightsHashAfter, bytes32(0), "settled to no weights");
                held[checkpoint.modelId] = checkpoint.weightsHashAfter;
            }
        }
        for (uint256 i = 0; i < books.models.length; ++i) {
            assertEq(books.models[i].weightsHash, held[i + 1], "the model holds its last settled weights");
        }
    }

    /// @dev At most one active checkpoint per model, the one the model points at, at the model's current weights
    ///      and best accuracy (the backup point); the model counts its checkpoints.
    function _oneActiveCheckpointPerModel(Books memory books) internal pure {
        uint256[] memory active = new uint256[](books.models.length + 1);
        uint256[] memory count = new uint256[](books.models.length + 1);
        for (uint256 i = 0; i < books.checkpoints.length; ++i) {
            SplitLedgerMarket.Checkpoint memory checkpoint = books.checkpoints[i];
            count[checkpoint.modelId] += 1;
            if (!_active(checkpoint.state)) continue;
            assertEq(active[checkpoint.modelId], 0, "two active checkpoints");
            active[checkpoint.modelId] = i + 1;
        }
        for (uint256 i = 0; i < books.models.length; ++i) {
            SplitLedgerMarket.Model memory model = books.models[i];
            assertEq(model.openCheckpointId, active[i + 1], "the model points at its active checkpoint");
            assertEq(model.checkpointCount, count[i + 1], "the model's checkpoint count");
            if (active[i + 1] == 0) continue;
            SplitLedgerMarket.Checkpoint memory checkpoint = books.checkpoints[active[i + 1] - 1];
            assertEq(checkpoint.weightsHash, model.weightsHash, "active checkpoint at the model's weights");
            assertEq(checkpoint.accuracyBefore, model.bestAccuracy, "active checkpoint at the model's best");
        }
    }

    /// @dev History anchors tile each model's rows (each starts where the last ended) and listings never overlap
    ///      (the proxy's next row id is where its last listing ended).
    function _anchorsAndListingsTile(Books memory books) internal view {
        for (uint256 i = 0; i < books.models.length; ++i) {
            uint256 id = i + 1;
            uint256 anchors = books.market.anchorCount(id);
            assertEq(anchors, books.expectedModels[i].anchors, "anchor count");
            uint64 rows;
            for (uint256 k = 0; k < anchors; ++k) {
                SplitLedgerMarket.Anchor memory anchor = books.market.getAnchor(id, k);
                assertEq(anchor.firstRowIndex, rows, "an anchor starts where the last ended");
                rows += anchor.rowCount;
            }
            assertEq(books.market.anchoredRows(id), rows, "anchored rows");
            assertEq(rows, books.expectedModels[i].anchoredRows, "anchored rows mirrored");
        }
        assertEq(books.market.nextRowId(handler.proxy()), handler.nextRowId(books.m), "listings");
        assertFalse(books.market.isProxy(handler.outsider()), "the outsider is no proxy");
    }

    // ------------------------------------------------------------------ helpers

    function _books(uint256 m) internal view returns (Books memory books) {
        books.m = m;
        books.market = handler.market(m);
        uint256 modelCount = books.market.modelCount();
        books.models = new SplitLedgerMarket.Model[](modelCount);
        for (uint256 i = 0; i < modelCount; ++i) {
            books.models[i] = books.market.getModel(i + 1);
        }
        uint256 checkpointCount = books.market.checkpointCount();
        books.checkpoints = new SplitLedgerMarket.Checkpoint[](checkpointCount);
        for (uint256 i = 0; i < checkpointCount; ++i) {
            books.checkpoints[i] = books.market.getCheckpoint(i + 1);
        }
        books.expectedModels = handler.modelMirrors(m);
        books.expectedCheckpoints = handler.checkpointMirrors(m);
        books.claimants = handler.claimants();
        books.leaves = new MarketHandler.Leaf[][](checkpointCount);
        books.claims = new uint256[][](checkpointCount);
        books.claimedFlags = new bool[][](checkpointCount);
        for (uint256 i = 0; i < checkpointCount; ++i) {
            books.leaves[i] = handler.leavesOf(m, i + 1);
            books.claims[i] = handler.claimsOf(m, i + 1);
            books.claimedFlags[i] = new bool[](books.claimants.length);
            for (uint256 a = 0; a < books.claimants.length; ++a) {
                books.claimedFlags[i][a] = books.market.isClaimed(i + 1, books.claimants[a]);
            }
        }
        assertEq(books.expectedModels.length, modelCount, "models mirrored");
        assertEq(books.expectedCheckpoints.length, checkpointCount, "checkpoints mirrored");
    }

    function _active(SplitLedgerMarket.CheckpointState state) internal pure returns (bool) {
        return state == SplitLedgerMarket.CheckpointState.Open || state == SplitLedgerMarket.CheckpointState.Billed;
    }

    function _named(MarketHandler.Leaf[] memory leaves, address account) internal pure returns (bool) {
        for (uint256 i = 0; i < leaves.length; ++i) {
            if (leaves[i].account == account) return true;
        }
        return false;
    }
}
