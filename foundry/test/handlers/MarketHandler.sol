// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SplitLedgerMarket} from "../../../contracts/SplitLedgerMarket.sol";
import {PayoutTree} from "../utils/PayoutTree.sol";

/// @title MarketHandler
/// @notice What forge's invariant fuzzer calls: every action of every role on two markets (one per token: a
///         plain ERC-20 and a fee-on-transfer one), over several models, hosting nodes, owners and sources.
///         Each action first predicts, from the handler's own mirror of the books, whether the market must
///         accept the call or which custom error it must revert with, then makes the call as the role
///         (vm.prank) and, on success, updates the mirror and the ghost variables the invariants read.
///         A prediction that does not hold fails the run (fail_on_revert, vm.expectRevert).
/// @dev Not a forge-std Test: forge matches every call's logs and selector against the handler's ABI, and Test's
///      two dozen events and public functions would cost a tenth of the campaign. Assertions are vm.assert*.
///      Seeds are bounded with _bound (no log per call). Time is the handler's own (currentTime, warped to at
///      the start of every action), so only the warp and timeout actions move it.
contract MarketHandler is CommonBase, StdCheats, StdUtils {
    uint32 internal constant SCALE = 1_000_000;
    uint64 public constant TIMEOUT = 1 days;
    /// @notice Models the register action stops at, per market (a bound of the test, not of the contract).
    uint256 public constant MAX_MODELS = 5;
    uint256 internal constant FEE_BPS = 100; // FeeOnTransferToken.FEE_BPS
    uint256 internal constant FUNDS = 1e24;
    uint256 internal constant N_SOURCES = 4;

    SplitLedgerMarket.CheckpointState internal constant OPEN = SplitLedgerMarket.CheckpointState.Open;
    SplitLedgerMarket.CheckpointState internal constant BILLED = SplitLedgerMarket.CheckpointState.Billed;
    SplitLedgerMarket.CheckpointState internal constant SETTLED = SplitLedgerMarket.CheckpointState.Settled;
    SplitLedgerMarket.CheckpointState internal constant ROLLED_BACK = SplitLedgerMarket.CheckpointState.RolledBack;

    /// @notice What the handler expects of one model: the market's record must equal it after every call.
    struct ModelMirror {
        address owner;
        address host;
        bytes32 initialWeights;
        uint32 baseline;
        bytes32 weights;
        bytes32 previousWeights;
        uint256 escrow;
        uint128 price;
        uint64 cap;
        uint32 best;
        uint256 open;
        uint256 checkpoints;
        uint256 anchors;
        uint64 anchoredRows;
    }

    /// @notice What the handler expects of one checkpoint, plus its ghosts (openedFrom, settles).
    struct CheckpointMirror {
        uint256 model;
        SplitLedgerMarket.CheckpointState state;
        uint32 accuracyBefore;
        uint32 accuracyAfter;
        uint64 openedAt;
        uint64 maxRows;
        uint64 billedRows;
        uint128 price;
        uint256 locked;
        uint256 total;
        uint256 claimed;
        /// @dev The model's weights hash just before the open call, read from the mirror, not the call.
        bytes32 openedFrom;
        bytes32 weightsAfter;
        bytes32 root;
        /// @dev Successful settle calls on this checkpoint.
        uint256 settles;
    }

    /// @notice One payout leaf of a bill; a dishonest bill may over-pay a leaf or list an account twice.
    struct Leaf {
        address account;
        uint256 amount;
    }

    SplitLedgerMarket[2] internal _markets;
    IERC20[2] internal _tokens;
    bool[2] internal _chargesFee;

    address[] internal _owners;
    address[] internal _hosts;
    address[] internal _sources;
    address public immutable sponsor = makeAddr("sponsor");
    address public immutable treasury = makeAddr("treasury");
    address public immutable outsider = makeAddr("outsider");
    address public immutable proxy = makeAddr("proxy");

    uint256 public currentTime = 1_700_000_000;
    /// @dev Bit m set: this action called market m.
    uint256 internal _called;

    mapping(uint256 market => uint256) public modelCount;
    mapping(uint256 market => uint256) public checkpointCount;
    mapping(uint256 market => mapping(uint256 modelId => ModelMirror)) internal _models;
    mapping(uint256 market => mapping(uint256 checkpointId => CheckpointMirror)) internal _checkpoints;
    mapping(uint256 market => mapping(uint256 checkpointId => Leaf[])) internal _leaves;
    mapping(uint256 market => uint64) public nextRowId;

    // ghost variables
    /// @notice Tokens that arrived at the market (deposits as credited, donations as received).
    mapping(uint256 market => uint256) public tokensIn;
    /// @notice Tokens the market sent (withdrawals and claims, before any fee).
    mapping(uint256 market => uint256) public tokensOut;
    /// @notice Tokens sent straight to the market, outside any call of it.
    mapping(uint256 market => uint256) public donated;
    /// @notice Successful claims per checkpoint and account.
    mapping(uint256 market => mapping(uint256 checkpointId => mapping(address account => uint256))) public claimsBy;
    /// @notice Tokens that arrived at an account from the market (net of any transfer fee).
    mapping(uint256 market => mapping(address account => uint256)) public receivedBy;
    /// @notice How often each outcome happened, so a test can show the handler reaches every path.
    mapping(bytes32 outcome => uint256) public outcomes;

    /// @dev Every action runs at the handler's time and ends by checking that each market it called holds
    ///      exactly what arrived at it minus what it sent.
    modifier atCurrentTime() {
        vm.warp(currentTime);
        _;
        for (uint256 m = 0; m < 2; ++m) {
            if (_called & (1 << m) == 0) continue;
            vm.assertEq(_tokens[m].balanceOf(address(_markets[m])), tokensIn[m] - tokensOut[m], "arrived - sent");
        }
        _called = 0;
    }

    /// @param markets The two markets: [0] over a plain ERC-20, [1] over a fee-on-transfer one.
    /// @param chargesFee Which of them takes FeeOnTransferToken's fee on every transfer.
    constructor(SplitLedgerMarket[2] memory markets, bool[2] memory chargesFee) {
        vm.warp(currentTime);
        _owners.push(makeAddr("alice"));
        _owners.push(makeAddr("bob"));
        _owners.push(makeAddr("carol"));
        _hosts.push(makeAddr("host one"));
        _hosts.push(makeAddr("host two"));
        for (uint256 i = 0; i < N_SOURCES; ++i) {
            _sources.push(makeAddr(string.concat("source ", vm.toString(i))));
        }
        for (uint256 m = 0; m < 2; ++m) {
            _markets[m] = markets[m];
            _tokens[m] = markets[m].token();
            _chargesFee[m] = chargesFee[m];
            for (uint256 i = 0; i < _owners.length; ++i) {
                _fund(m, _owners[i]);
            }
            _fund(m, sponsor);
            vm.prank(proxy);
            markets[m].registerProxy("http://proxy.invalid");
        }
        // deal finds balance slots with vm.record() and leaves it on; recording every storage access of every
        // call after this would cost a tenth of the campaign.
        vm.stopRecord();
        // Three models per market: different owners, hosting nodes (one owner hosts its own model), baselines
        // (one starts at 100 %, where only holding 100 % settles), quotes and caps; each quoted and funded.
        _registerFunded(0, _owners[0], _hosts[0], 500_000, 100, 0, 100_000);
        _registerFunded(0, _owners[1], _hosts[0], 0, 7, 40, 50_000);
        _registerFunded(0, _owners[0], _hosts[1], 990_000, 1_000, 0, 100_000);
        _registerFunded(1, _owners[1], _hosts[1], 500_000, 100, 0, 100_000);
        _registerFunded(1, _owners[2], _owners[2], SCALE, 50, 0, 100_000);
        _registerFunded(1, _owners[0], _hosts[0], 250_000, 3, 10, 20_000);
    }

    // ------------------------------------------------------------------ actions: registry, escrow, quote

    /// @notice registerModel by any owner, hosted by a node or by the owner itself; refused without weights,
    ///         with a baseline past 100 % or without a hosting node.
    function registerModel(uint256 marketSeed, uint256 ownerSeed, uint256 hostSeed, uint256 baselineSeed, uint256 mode)
        external
        atCurrentTime
    {
        uint256 m = _bound(marketSeed, 0, 1);
        address owner = _owners[_bound(ownerSeed, 0, _owners.length - 1)];
        uint256 hostIndex = _bound(hostSeed, 0, _hosts.length);
        address host = hostIndex == _hosts.length ? owner : _hosts[hostIndex];
        uint32 baseline = _baseline(baselineSeed);
        bytes32 weights = _initialWeights(m, modelCount[m] + 1);
        mode %= 10;
        if (mode == 0) {
            _try(owner, m, _registerCall(host, bytes32(0), baseline), _err(SplitLedgerMarket.ZeroWeightsHash.selector));
            return _happened("register refused: no weights");
        }
        if (mode == 1) {
            uint32 tooHigh = uint32(_bound(baselineSeed, SCALE + 1, type(uint32).max));
            bytes memory err = abi.encodeWithSelector(SplitLedgerMarket.AccuracyOutOfRange.selector, tooHigh);
            _try(owner, m, _registerCall(host, weights, tooHigh), err);
            return _happened("register refused: accuracy");
        }
        if (mode == 2) {
            _try(owner, m, _registerCall(address(0), weights, baseline), _err(SplitLedgerMarket.ZeroAddress.selector));
            return _happened("register refused: no host");
        }
        if (modelCount[m] >= MAX_MODELS) return _happened("register: test bound");
        _register(m, owner, host, baseline);
        _happened("register");
    }

    /// @notice deposit by an owner or a sponsor into any model (anyone may fund); the escrow grows by what
    ///         arrived, so by less than asked under the fee-on-transfer token.
    function deposit(uint256 marketSeed, uint256 modelSeed, uint256 funderSeed, uint256 amount) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        uint256 id = _modelId(m, modelSeed);
        uint256 funderIndex = _bound(funderSeed, 0, _owners.length);
        address funder = funderIndex == _owners.length ? sponsor : _owners[funderIndex];
        amount = _bound(amount, 0, 1e6);
        bytes memory call_ = abi.encodeCall(SplitLedgerMarket.deposit, (id, amount));
        if (id > modelCount[m]) {
            _try(funder, m, call_, abi.encodeWithSelector(SplitLedgerMarket.UnknownModel.selector, id));
            return _happened("deposit refused: unknown model");
        }
        if (amount == 0) {
            _try(funder, m, call_, _err(SplitLedgerMarket.ZeroAmount.selector));
            return _happened("deposit refused: zero");
        }
        _try(funder, m, call_, "");
        // What arrived is checked on return: the market then holds exactly tokensIn - tokensOut.
        uint256 received = _net(m, amount);
        _models[m][id].escrow += received;
        tokensIn[m] += received;
        _happened("deposit");
    }

    /// @notice withdraw by the owner to itself or a treasury; refused to anyone else, to nobody, for nothing
    ///         or for more than the unlocked escrow.
    function withdraw(uint256 marketSeed, uint256 modelSeed, uint256 amount, uint256 mode) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        uint256 id = _modelId(m, modelSeed);
        if (id > modelCount[m]) {
            return _unknownModel(m, id, abi.encodeCall(SplitLedgerMarket.withdraw, (id, amount, _owners[0])));
        }
        ModelMirror storage model = _models[m][id];
        mode %= 16;
        address caller = mode == 0 ? outsider : model.owner;
        address to = mode == 1 ? address(0) : mode % 2 == 0 ? treasury : model.owner;
        // Up to a quarter of the escrow; all of it (mode 9), one more than it (10) or nothing (11).
        amount = _bound(amount, 1, model.escrow / 4 + 1);
        if (mode == 9) amount = model.escrow;
        if (mode == 10) amount = model.escrow + 1;
        if (mode == 11) amount = 0;
        bytes memory err;
        if (caller != model.owner) {
            err = abi.encodeWithSelector(SplitLedgerMarket.NotModelOwner.selector, id, caller);
        } else if (to == address(0)) {
            err = _err(SplitLedgerMarket.ZeroAddress.selector);
        } else if (amount == 0) {
            err = _err(SplitLedgerMarket.ZeroAmount.selector);
        } else if (amount > model.escrow) {
            err = abi.encodeWithSelector(SplitLedgerMarket.InsufficientEscrow.selector, id, model.escrow, amount);
        }
        uint256 toBefore = to == address(0) ? 0 : _tokens[m].balanceOf(to);
        _try(caller, m, abi.encodeCall(SplitLedgerMarket.withdraw, (id, amount, to)), err);
        if (err.length != 0) return _happened("withdraw refused");
        vm.assertEq(_tokens[m].balanceOf(to) - toBefore, _net(m, amount), "withdraw: arrived");
        model.escrow -= amount;
        tokensOut[m] += amount;
        if (to == treasury) receivedBy[m][treasury] += _net(m, amount);
        _happened("withdraw");
    }

    /// @notice setQuote by the owner (an open checkpoint keeps its price); refused to others and at price 0.
    function setQuote(uint256 marketSeed, uint256 modelSeed, uint256 price, uint256 cap, uint256 mode)
        external
        atCurrentTime
    {
        uint256 m = _bound(marketSeed, 0, 1);
        uint256 id = _modelId(m, modelSeed);
        if (id > modelCount[m]) return _unknownModel(m, id, abi.encodeCall(SplitLedgerMarket.setQuote, (id, 1, 0)));
        ModelMirror storage model = _models[m][id];
        mode %= 10;
        address caller = mode == 0 ? outsider : model.owner;
        uint128 newPrice = mode == 1 ? 0 : uint128(_bound(price, 1, 1e4));
        uint64 newCap = cap % 2 == 0 ? 0 : uint64(_bound(cap, 1, 60));
        bytes memory err;
        if (caller != model.owner) err = abi.encodeWithSelector(SplitLedgerMarket.NotModelOwner.selector, id, caller);
        else if (newPrice == 0) err = _err(SplitLedgerMarket.ZeroAmount.selector);
        _try(caller, m, abi.encodeCall(SplitLedgerMarket.setQuote, (id, newPrice, newCap)), err);
        if (err.length != 0) return _happened("quote refused");
        model.price = newPrice;
        model.cap = newCap;
        _happened("quote");
    }

    /// @notice Tokens sent to the market outside any of its calls: they are nobody's and stay there.
    function donate(uint256 marketSeed, uint256 amount) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        amount = _bound(amount, 1, 1e6);
        vm.prank(sponsor);
        vm.assertTrue(_tokens[m].transfer(address(_markets[m]), amount), "donate");
        _called |= 1 << m;
        donated[m] += _net(m, amount);
        tokensIn[m] += _net(m, amount);
        _happened("donate");
    }

    // ------------------------------------------------------------------ actions: checkpoints

    /// @notice openCheckpoint by the hosting node from the model's weights and best accuracy, or by an outsider,
    ///         from stale or unregistered weights, at the wrong accuracy, for no rows, past the row cap, or for
    ///         exactly the rows the escrow pays for and one more.
    function openCheckpoint(uint256 marketSeed, uint256 modelSeed, uint256 rows, uint256 mode) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        uint256 id = _modelId(m, modelSeed);
        if (id > modelCount[m]) {
            return _unknownModel(m, id, abi.encodeCall(SplitLedgerMarket.openCheckpoint, (id, 1, bytes32(0), 0)));
        }
        ModelMirror storage model = _models[m][id];
        mode %= 16;
        address caller = mode == 0 ? outsider : model.host;
        bytes32 weights = model.weights;
        if (mode == 1) {
            weights = model.previousWeights != 0 ? model.previousWeights : keccak256("weights nobody registered");
        }
        uint32 accuracy = model.best;
        if (mode == 2) accuracy = model.best == SCALE ? SCALE - 1 : model.best + 1;
        // Within the row cap, except in mode 4 (RowCapExceeded); mode 5 and 6 at the escrow's edge: the most rows
        // it pays for, and one more (InsufficientEscrow).
        uint64 maxRows = uint64(_bound(rows, 1, model.cap != 0 && mode != 4 ? model.cap : 80));
        if (mode == 3) maxRows = 0;
        if ((mode == 5 || mode == 6) && model.price != 0) maxRows = uint64(model.escrow / model.price + mode - 5);
        uint256 budget = uint256(maxRows) * model.price;

        bytes memory err;
        if (caller != model.host) {
            err = abi.encodeWithSelector(SplitLedgerMarket.NotHostingNode.selector, id, caller);
        } else if (model.open != 0) {
            err = abi.encodeWithSelector(SplitLedgerMarket.CheckpointAlreadyOpen.selector, id, model.open);
        } else if (model.price == 0) {
            err = abi.encodeWithSelector(SplitLedgerMarket.NoQuote.selector, id);
        } else if (maxRows == 0) {
            err = _err(SplitLedgerMarket.ZeroAmount.selector);
        } else if (model.cap != 0 && maxRows > model.cap) {
            err = abi.encodeWithSelector(SplitLedgerMarket.RowCapExceeded.selector, maxRows, model.cap);
        } else if (accuracy != model.best) {
            err = abi.encodeWithSelector(SplitLedgerMarket.AccuracyMismatch.selector, accuracy, model.best);
        } else if (weights != model.weights) {
            err = abi.encodeWithSelector(SplitLedgerMarket.WeightsHashMismatch.selector, weights, model.weights);
        } else if (budget > model.escrow) {
            err = abi.encodeWithSelector(SplitLedgerMarket.InsufficientEscrow.selector, id, model.escrow, budget);
        }
        bytes memory ret =
            _try(caller, m, abi.encodeCall(SplitLedgerMarket.openCheckpoint, (id, maxRows, weights, accuracy)), err);
        if (err.length != 0) return _happened(mode == 1 ? bytes32("open refused: weights") : bytes32("open refused"));

        uint256 checkpointId = ++checkpointCount[m];
        vm.assertEq(abi.decode(ret, (uint256)), checkpointId, "open: id");
        CheckpointMirror storage checkpoint = _checkpoints[m][checkpointId];
        checkpoint.model = id;
        checkpoint.state = OPEN;
        checkpoint.accuracyBefore = accuracy;
        checkpoint.openedAt = uint64(currentTime);
        checkpoint.maxRows = maxRows;
        checkpoint.price = model.price;
        checkpoint.locked = budget;
        checkpoint.openedFrom = model.weights;
        model.escrow -= budget;
        model.open = checkpointId;
        model.checkpoints += 1;
        _happened("open");
    }

    /// @notice commitBill of an open checkpoint: one leaf per source that sold rows, each paid its rows at the
    ///         checkpoint's price; or a dishonest bill (a leaf over-paid, a source listed twice), or one the
    ///         market refuses (an outsider, a wrong total, more rows than locked, no root, already billed).
    function commitBill(uint256 pick, uint256 sharesSeed, uint256 mode) external atCurrentTime {
        mode %= 16;
        // Mode 8 bills a checkpoint already billed (WrongCheckpointState).
        (bool found, uint256 m, uint256 id) = _pickActive(pick, mode != 8, mode == 8);
        if (!found) return;
        ModelMirror storage model = _models[m][id];
        uint256 checkpointId = model.open;
        CheckpointMirror storage checkpoint = _checkpoints[m][checkpointId];
        (Leaf[] memory leaves, uint256 rows) = _billLeaves(checkpoint, sharesSeed, mode);
        bytes32 root = leaves.length == 0 ? bytes32(0) : PayoutTree.root(_leafHashes(checkpointId, leaves));
        if (mode == 5) root = bytes32(0);
        if (mode == 6) rows = checkpoint.maxRows + 1;
        uint256 total = rows * checkpoint.price + (mode == 7 ? 1 : 0);
        address caller = mode == 0 ? outsider : model.host;

        bytes memory err;
        if (caller != model.host) {
            err = abi.encodeWithSelector(SplitLedgerMarket.NotHostingNode.selector, id, caller);
        } else if (checkpoint.state != OPEN) {
            err =
                abi.encodeWithSelector(SplitLedgerMarket.WrongCheckpointState.selector, checkpointId, checkpoint.state);
        } else if (rows > checkpoint.maxRows) {
            err = abi.encodeWithSelector(SplitLedgerMarket.BillRowsExceedLocked.selector, rows, checkpoint.maxRows);
        } else if (total != rows * checkpoint.price) {
            err = abi.encodeWithSelector(SplitLedgerMarket.BillTotalMismatch.selector, total, rows * checkpoint.price);
        } else if (total != 0 && root == bytes32(0)) {
            err = _err(SplitLedgerMarket.EmptyPayoutRoot.selector);
        }
        bytes memory call_ = abi.encodeCall(
            SplitLedgerMarket.commitBill,
            (checkpointId, root, keccak256(abi.encode("rows of", m, checkpointId)), uint64(rows), total)
        );
        _try(caller, m, call_, err);
        if (err.length != 0) return _happened("bill refused");
        checkpoint.state = BILLED;
        checkpoint.billedRows = uint64(rows);
        checkpoint.total = total;
        checkpoint.root = root;
        for (uint256 i = 0; i < leaves.length; ++i) {
            _leaves[m][checkpointId].push(leaves[i]);
        }
        _happened(mode == 3 || mode == 4 ? bytes32("bill: dishonest") : bytes32("bill"));
    }

    /// @dev The bill's leaves: each source sells 0..20 rows (halved until they fit the rows locked), paid at the
    ///      checkpoint's price; mode 3 over-pays the first leaf, mode 4 lists its source a second time.
    function _billLeaves(CheckpointMirror storage checkpoint, uint256 sharesSeed, uint256 mode)
        internal
        view
        returns (Leaf[] memory leaves, uint256 rows)
    {
        uint256[N_SOURCES] memory rowsOf;
        for (uint256 i = 0; i < N_SOURCES; ++i) {
            rowsOf[i] = _bound(uint8(sharesSeed >> (8 * i)), 0, 20);
            rows += rowsOf[i];
        }
        while (rows > checkpoint.maxRows) {
            rows = 0;
            for (uint256 i = 0; i < N_SOURCES; ++i) {
                rowsOf[i] /= 2;
                rows += rowsOf[i];
            }
        }
        leaves = new Leaf[](N_SOURCES + 1);
        uint256 count;
        for (uint256 i = 0; i < N_SOURCES; ++i) {
            if (rowsOf[i] != 0) leaves[count++] = Leaf(_sources[i], rowsOf[i] * checkpoint.price);
        }
        if (mode == 3 && count != 0) leaves[0].amount += checkpoint.price; // the leaves sum past the total
        if (mode == 4 && count != 0) leaves[count++] = Leaf(leaves[0].account, checkpoint.price); // listed twice
        assembly ("memory-safe") {
            mstore(leaves, count)
        }
    }

    /// @notice settleCheckpoint of an active checkpoint: on a strict gain (or holding 100 % at 100 %) it must
    ///         settle; without a gain, past 100 %, without weights, unbilled or from an outsider it must not.
    function settle(uint256 pick, uint256 gainSeed, uint256 mode) external atCurrentTime {
        mode %= 16;
        // Mode 4 settles a checkpoint not yet billed (WrongCheckpointState).
        (bool found, uint256 m, uint256 id) = _pickActive(pick, mode == 4, mode != 4);
        if (!found) return;
        ModelMirror storage model = _models[m][id];
        uint256 checkpointId = model.open;
        CheckpointMirror storage checkpoint = _checkpoints[m][checkpointId];
        address caller = mode == 0 ? outsider : model.host;
        uint32 accuracy;
        if (mode == 1) {
            // No gain: holding the best (half of the draws: the boundary), or below it.
            accuracy = gainSeed % 2 == 0 ? model.best : uint32(model.best - _bound(gainSeed, 0, model.best));
            if (accuracy == SCALE) accuracy = SCALE - 1; // holding 100 % at 100 % settles
        } else if (mode == 2) {
            accuracy = uint32(_bound(gainSeed, SCALE + 1, type(uint32).max));
        } else if (gainSeed % 8 == 0) {
            accuracy = SCALE;
        } else {
            accuracy = uint32(_min(model.best + _bound(gainSeed, 1, 30_000), SCALE));
        }
        bytes32 weightsAfter = mode == 3 ? bytes32(0) : _trainedWeights(m, checkpointId);

        bytes memory err;
        bool holdsCap = accuracy == SCALE && model.best == SCALE;
        if (caller != model.host) {
            err = abi.encodeWithSelector(SplitLedgerMarket.NotHostingNode.selector, id, caller);
        } else if (checkpoint.state != BILLED) {
            err =
                abi.encodeWithSelector(SplitLedgerMarket.WrongCheckpointState.selector, checkpointId, checkpoint.state);
        } else if (accuracy > SCALE) {
            err = abi.encodeWithSelector(SplitLedgerMarket.AccuracyOutOfRange.selector, accuracy);
        } else if (weightsAfter == bytes32(0)) {
            err = _err(SplitLedgerMarket.ZeroWeightsHash.selector);
        } else if (accuracy <= model.best && !holdsCap) {
            err = abi.encodeWithSelector(SplitLedgerMarket.NoAccuracyGain.selector, accuracy, model.best);
        }
        // A settle moves no tokens: on return the market still holds exactly tokensIn - tokensOut.
        bytes memory call_ = abi.encodeCall(SplitLedgerMarket.settleCheckpoint, (checkpointId, accuracy, weightsAfter));
        _try(caller, m, call_, err);
        if (err.length != 0) {
            return _happened(mode == 1 ? bytes32("settle refused: no gain") : bytes32("settle refused"));
        }
        checkpoint.state = SETTLED;
        checkpoint.accuracyAfter = accuracy;
        checkpoint.weightsAfter = weightsAfter;
        checkpoint.settles += 1;
        model.previousWeights = model.weights;
        model.weights = weightsAfter;
        model.best = accuracy;
        model.escrow += checkpoint.locked - checkpoint.total;
        model.open = 0;
        _happened(holdsCap ? bytes32("settle at the cap") : bytes32("settle"));
    }

    /// @notice A closed (settled or rolled back) or unknown checkpoint can be neither billed, settled nor rolled
    ///         back again by its hosting node: a checkpoint settles at most once.
    function touchClosed(uint256 marketSeed, uint256 checkpointSeed, uint256 mode) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        uint256 checkpointId = _bound(checkpointSeed, 1, checkpointCount[m] + 1);
        CheckpointMirror storage checkpoint = _checkpoints[m][checkpointId];
        if (checkpoint.state == OPEN || checkpoint.state == BILLED) return;
        bool unknown = checkpointId > checkpointCount[m];
        address host = unknown ? _hosts[0] : _models[m][checkpoint.model].host;
        bytes memory err = unknown
            ? abi.encodeWithSelector(SplitLedgerMarket.UnknownCheckpoint.selector, checkpointId)
            : abi.encodeWithSelector(SplitLedgerMarket.WrongCheckpointState.selector, checkpointId, checkpoint.state);
        bytes32 weights = _trainedWeights(m, checkpointId);
        mode %= 3;
        if (mode == 0) {
            _try(host, m, abi.encodeCall(SplitLedgerMarket.settleCheckpoint, (checkpointId, SCALE, weights)), err);
        } else if (mode == 1) {
            _try(host, m, abi.encodeCall(SplitLedgerMarket.rollbackCheckpoint, (checkpointId, 0, weights)), err);
        } else {
            _try(host, m, abi.encodeCall(SplitLedgerMarket.commitBill, (checkpointId, bytes32(0), weights, 0, 0)), err);
        }
        _happened(unknown ? bytes32("closed: unknown") : bytes32("closed refused"));
    }

    /// @notice rollbackCheckpoint of an active checkpoint by its hosting node (any time, naming the discarded
    ///         weights), by the owner (only after the timeout, weights may be unknown), or by an outsider.
    ///         Nobody is paid: no token balance moves, and the whole budget returns to escrow.
    function rollback(uint256 pick, uint256 accuracySeed, uint256 mode) external atCurrentTime {
        (bool found, uint256 m, uint256 id) = _pickActive(pick, true, true);
        if (!found) return;
        ModelMirror storage model = _models[m][id];
        uint256 checkpointId = model.open;
        CheckpointMirror storage checkpoint = _checkpoints[m][checkpointId];
        mode %= 10;
        uint64 expiresAt = checkpoint.openedAt + TIMEOUT;
        // Mode 3: the owner at its timeout (half of the draws exactly then) or after; mode 5: a second before it.
        if (mode == 3 && currentTime < expiresAt) {
            currentTime = accuracySeed % 2 == 0 ? expiresAt : expiresAt + _bound(accuracySeed, 0, 1 hours);
        }
        if (mode == 5 && currentTime < expiresAt - 1) currentTime = expiresAt - 1;
        vm.warp(currentTime);
        address caller = mode == 0 ? outsider : mode == 2 || mode == 3 || mode == 5 ? model.owner : model.host;
        bytes32 weightsAfter = mode == 1 || caller != model.host ? bytes32(0) : _trainedWeights(m, checkpointId);
        uint32 accuracy = mode == 4 ? SCALE + 1 : uint32(_bound(accuracySeed, 0, SCALE));

        bytes memory err;
        if (caller == model.host) {
            if (weightsAfter == bytes32(0)) err = _err(SplitLedgerMarket.ZeroWeightsHash.selector);
        } else if (caller != model.owner) {
            err = abi.encodeWithSelector(SplitLedgerMarket.NotHostingNode.selector, id, caller);
        } else if (currentTime < expiresAt) {
            err = abi.encodeWithSelector(SplitLedgerMarket.CheckpointNotExpired.selector, checkpointId, expiresAt);
        }
        if (err.length == 0 && accuracy > SCALE) {
            err = abi.encodeWithSelector(SplitLedgerMarket.AccuracyOutOfRange.selector, accuracy);
        }
        uint256[] memory before = _balances(m);
        _try(
            caller, m, abi.encodeCall(SplitLedgerMarket.rollbackCheckpoint, (checkpointId, accuracy, weightsAfter)), err
        );
        uint256[] memory after_ = _balances(m);
        for (uint256 i = 0; i < before.length; ++i) {
            vm.assertEq(after_[i], before[i], "rollback pays nobody");
        }
        if (err.length != 0) return _happened("rollback refused");
        checkpoint.state = ROLLED_BACK;
        checkpoint.accuracyAfter = accuracy;
        checkpoint.weightsAfter = weightsAfter;
        model.escrow += checkpoint.locked;
        model.open = 0;
        _happened(caller == model.host ? bytes32("rollback by host") : bytes32("rollback by owner"));
    }

    /// @notice Time passes (at most two days a call), so owners' timeouts come due.
    function warp(uint256 seconds_) external {
        currentTime += _bound(seconds_, 0, 2 days);
        vm.warp(currentTime);
    }

    // ------------------------------------------------------------------ actions: payouts

    /// @notice claim of a settled checkpoint's leaf by its receiver (which a dishonest bill may refuse with
    ///         ClaimExceedsBill), or by someone presenting another's proof, for more than the leaf says, for
    ///         nothing, a second time, or from a checkpoint that is not settled.
    function claim(uint256 pick, uint256 mode) external atCurrentTime {
        mode %= 16;
        if (mode == 3) return _claimUnsettled(pick);
        (bool found, uint256 m, uint256 checkpointId, uint256 index) = _pickLeaf(pick, mode == 4);
        if (!found) return;
        Leaf memory leaf = _leaves[m][checkpointId][index];
        bytes32[] memory proof = PayoutTree.proof(_leafHashes(checkpointId, _leaves[m][checkpointId]), index);
        address caller = mode == 0 ? outsider : leaf.account;
        uint256 amount = mode == 1 ? leaf.amount + 1 : mode == 2 ? 0 : leaf.amount;
        bytes memory err =
            _claimError(m, checkpointId, caller, amount, caller == leaf.account && amount == leaf.amount, 0);
        uint256 balanceBefore = _tokens[m].balanceOf(caller);
        _try(caller, m, abi.encodeCall(SplitLedgerMarket.claim, (checkpointId, amount, proof)), err);
        if (err.length != 0) {
            vm.assertEq(_tokens[m].balanceOf(caller), balanceBefore, "refused claim pays nothing");
            return _happened(
                bytes4(err) == SplitLedgerMarket.ClaimExceedsBill.selector
                    ? bytes32("claim refused: past bill")
                    : bytes32("claim refused")
            );
        }
        vm.assertEq(_tokens[m].balanceOf(caller) - balanceBefore, _net(m, amount), "claim: arrived");
        _claimed(m, checkpointId, caller, amount);
        _happened("claim");
    }

    /// @notice claimMany of up to three of one source's leaves in one market: all or nothing; sometimes with
    ///         the same leaf twice (AlreadyClaimed) or arrays of different lengths (LengthMismatch).
    function claimMany(uint256 marketSeed, uint256 sourceSeed, uint256 pick, uint256 mode) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        address account = _sources[_bound(sourceSeed, 0, N_SOURCES - 1)];
        mode %= 6;
        (uint256[] memory ids, uint256[] memory amounts, bytes32[][] memory proofs) = _pendingOf(m, account, pick);
        if (mode == 1 && ids.length != 0) (ids, amounts, proofs) = _withFirstTwice(ids, amounts, proofs);

        bytes memory err;
        if (mode == 0) {
            err = _err(SplitLedgerMarket.LengthMismatch.selector);
            amounts = new uint256[](ids.length + 1);
        } else {
            // Claims inside one call see the earlier ones: simulate them in order; the first refusal reverts all.
            uint256[] memory claimedBefore = new uint256[](ids.length);
            for (uint256 i = 0; i < ids.length && err.length == 0; ++i) {
                bool earlier;
                for (uint256 j = 0; j < i; ++j) {
                    if (ids[j] == ids[i]) {
                        earlier = true;
                        claimedBefore[i] += amounts[j];
                    }
                }
                err = earlier
                    ? abi.encodeWithSelector(SplitLedgerMarket.AlreadyClaimed.selector, ids[i], account)
                    : _claimError(m, ids[i], account, amounts[i], true, claimedBefore[i]);
            }
        }
        uint256 balanceBefore = _tokens[m].balanceOf(account);
        _try(account, m, abi.encodeCall(SplitLedgerMarket.claimMany, (ids, amounts, proofs)), err);
        if (err.length != 0) {
            vm.assertEq(_tokens[m].balanceOf(account), balanceBefore, "refused claimMany pays nothing");
            return _happened("claimMany refused");
        }
        uint256 expected;
        for (uint256 i = 0; i < ids.length; ++i) {
            _claimed(m, ids[i], account, amounts[i]);
            expected += _net(m, amounts[i]);
        }
        vm.assertEq(_tokens[m].balanceOf(account) - balanceBefore, expected, "claimMany: arrived");
        _happened(ids.length == 0 ? bytes32("claimMany: none") : bytes32("claimMany"));
    }

    // ------------------------------------------------------------------ actions: anchors and listings

    /// @notice anchorHistory by the hosting node; refused to others, without a root or without rows.
    function anchorHistory(uint256 marketSeed, uint256 modelSeed, uint256 rows, uint256 mode) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        uint256 id = _modelId(m, modelSeed);
        if (id > modelCount[m]) {
            return _unknownModel(m, id, abi.encodeCall(SplitLedgerMarket.anchorHistory, (id, bytes32(uint256(1)), 1)));
        }
        ModelMirror storage model = _models[m][id];
        mode %= 8;
        address caller = mode == 0 ? outsider : model.host;
        bytes32 root = mode == 1 ? bytes32(0) : keccak256(abi.encode("history", m, id, model.anchors));
        uint64 rowCount = mode == 2 ? 0 : uint64(_bound(rows, 1, 1_000));
        bytes memory err;
        if (caller != model.host) err = abi.encodeWithSelector(SplitLedgerMarket.NotHostingNode.selector, id, caller);
        else if (root == bytes32(0)) err = _err(SplitLedgerMarket.EmptyRoot.selector);
        else if (rowCount == 0) err = _err(SplitLedgerMarket.ZeroAmount.selector);
        bytes memory ret = _try(caller, m, abi.encodeCall(SplitLedgerMarket.anchorHistory, (id, root, rowCount)), err);
        if (err.length != 0) return _happened("anchor refused");
        vm.assertEq(abi.decode(ret, (uint256)), model.anchors, "anchor: index");
        model.anchors += 1;
        model.anchoredRows += rowCount;
        _happened("anchor");
    }

    /// @notice publishListing by the registered proxy past its last listing; refused to a non-proxy, for no
    ///         rows or fields, and for a range overlapping the last one.
    function publishListing(uint256 marketSeed, uint256 gap, uint256 rows, uint256 mode) external atCurrentTime {
        uint256 m = _bound(marketSeed, 0, 1);
        mode %= 8;
        address caller = mode == 0 ? outsider : proxy;
        uint64 next = nextRowId[m];
        uint64 first = mode == 3 && next != 0 ? next - 1 : next + uint64(_bound(gap, 0, 1_000));
        uint64 rowCount = mode == 1 ? 0 : uint64(_bound(rows, 1, 1_000));
        string[] memory fields = new string[](mode == 2 ? 0 : 2);
        if (fields.length != 0) (fields[0], fields[1]) = ("age", "income");
        bytes memory err;
        if (caller != proxy) err = abi.encodeWithSelector(SplitLedgerMarket.NotProxy.selector, caller);
        else if (rowCount == 0) err = _err(SplitLedgerMarket.ZeroAmount.selector);
        else if (fields.length == 0) err = _err(SplitLedgerMarket.EmptyComposition.selector);
        else if (first < next) err = abi.encodeWithSelector(SplitLedgerMarket.ListingOverlaps.selector, first, next);
        _try(caller, m, abi.encodeCall(SplitLedgerMarket.publishListing, (first, rowCount, fields)), err);
        if (err.length != 0) return _happened("listing refused");
        nextRowId[m] = first + rowCount;
        _happened("listing");
    }

    // ------------------------------------------------------------------ views for the invariants

    function market(uint256 m) external view returns (SplitLedgerMarket) {
        return _markets[m];
    }

    function token(uint256 m) external view returns (IERC20) {
        return _tokens[m];
    }

    /// @notice The mirror of every model of market `m`, [id - 1].
    function modelMirrors(uint256 m) external view returns (ModelMirror[] memory all) {
        all = new ModelMirror[](modelCount[m]);
        for (uint256 i = 0; i < all.length; ++i) {
            all[i] = _models[m][i + 1];
        }
    }

    /// @notice The mirror of every checkpoint of market `m`, [checkpointId - 1].
    function checkpointMirrors(uint256 m) external view returns (CheckpointMirror[] memory all) {
        all = new CheckpointMirror[](checkpointCount[m]);
        for (uint256 i = 0; i < all.length; ++i) {
            all[i] = _checkpoints[m][i + 1];
        }
    }

    function leavesOf(uint256 m, uint256 checkpointId) external view returns (Leaf[] memory) {
        return _leaves[m][checkpointId];
    }

    /// @notice Everyone who ever calls claim or claimMany: the sources, and the outsider with stolen proofs.
    function claimants() public view returns (address[] memory all) {
        all = new address[](N_SOURCES + 1);
        for (uint256 i = 0; i < N_SOURCES; ++i) {
            all[i] = _sources[i];
        }
        all[N_SOURCES] = outsider;
    }

    /// @notice Successful claims on `checkpointId` by each of claimants(), in that order.
    function claimsOf(uint256 m, uint256 checkpointId) external view returns (uint256[] memory counts) {
        address[] memory all = claimants();
        counts = new uint256[](all.length);
        for (uint256 i = 0; i < all.length; ++i) {
            counts[i] = claimsBy[m][checkpointId][all[i]];
        }
    }

    /// @notice Every address the handler acts as: owners, hosting nodes, sources, sponsor, treasury, outsider, proxy.
    function actors() public view returns (address[] memory all) {
        all = new address[](_owners.length + _hosts.length + _sources.length + 4);
        uint256 n;
        for (uint256 i = 0; i < _owners.length; ++i) {
            all[n++] = _owners[i];
        }
        for (uint256 i = 0; i < _hosts.length; ++i) {
            all[n++] = _hosts[i];
        }
        for (uint256 i = 0; i < _sources.length; ++i) {
            all[n++] = _sources[i];
        }
        (all[n], all[n + 1], all[n + 2], all[n + 3]) = (sponsor, treasury, outsider, proxy);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Calls the market as `caller`; with `err` it must revert with exactly that error, else succeed. A call
    ///      that reverts unpredicted, or does not revert as predicted (vm.expectRevert then makes the call fail
    ///      with its own message), fails the handler call with that revert data.
    function _try(address caller, uint256 m, bytes memory data, bytes memory err) internal returns (bytes memory ret) {
        bool ok;
        _called |= 1 << m;
        if (err.length != 0) vm.expectRevert(err);
        vm.prank(caller);
        (ok, ret) = address(_markets[m]).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    /// @dev Any call naming a model after the last one: UnknownModel, whoever calls (the check comes first).
    function _unknownModel(uint256 m, uint256 id, bytes memory data) internal {
        _try(outsider, m, data, abi.encodeWithSelector(SplitLedgerMarket.UnknownModel.selector, id));
        _happened("refused: unknown model");
    }

    function _claimError(
        uint256 m,
        uint256 checkpointId,
        address caller,
        uint256 amount,
        bool validProof,
        uint256 claimedInCall
    ) internal view returns (bytes memory) {
        CheckpointMirror storage checkpoint = _checkpoints[m][checkpointId];
        if (checkpoint.state != SETTLED) {
            return
                abi.encodeWithSelector(SplitLedgerMarket.WrongCheckpointState.selector, checkpointId, checkpoint.state);
        }
        if (amount == 0) return _err(SplitLedgerMarket.ZeroAmount.selector);
        if (claimsBy[m][checkpointId][caller] != 0) {
            return abi.encodeWithSelector(SplitLedgerMarket.AlreadyClaimed.selector, checkpointId, caller);
        }
        if (!validProof) {
            return abi.encodeWithSelector(SplitLedgerMarket.InvalidProof.selector, checkpointId, caller, amount);
        }
        uint256 claimedAfter = checkpoint.claimed + claimedInCall + amount;
        if (claimedAfter > checkpoint.total) {
            return abi.encodeWithSelector(
                SplitLedgerMarket.ClaimExceedsBill.selector, checkpointId, claimedAfter, checkpoint.total
            );
        }
        return "";
    }

    /// @dev A claim on an active checkpoint, or else on the latest rolled-back one: WrongCheckpointState.
    function _claimUnsettled(uint256 pick) internal {
        (bool found, uint256 m, uint256 id) = _pickActive(pick, true, true);
        uint256 checkpointId = found ? _models[m][id].open : 0;
        for (uint256 k = 0; k < 2 && checkpointId == 0; ++k) {
            m = (pick % 2 + k) % 2;
            checkpointId = _latestRolledBack(m);
        }
        if (checkpointId == 0) return;
        address caller = _sources[pick % N_SOURCES];
        bytes memory err = _claimError(m, checkpointId, caller, 1, false, 0);
        _try(caller, m, abi.encodeCall(SplitLedgerMarket.claim, (checkpointId, 1, new bytes32[](0))), err);
        _happened("claim refused: not settled");
    }

    function _latestRolledBack(uint256 m) internal view returns (uint256) {
        for (uint256 c = checkpointCount[m]; c > 0; --c) {
            if (_checkpoints[m][c].state == ROLLED_BACK) return c;
        }
        return 0;
    }

    function _claimed(uint256 m, uint256 checkpointId, address account, uint256 amount) internal {
        claimsBy[m][checkpointId][account] += 1;
        _checkpoints[m][checkpointId].claimed += amount;
        receivedBy[m][account] += _net(m, amount);
        tokensOut[m] += amount;
    }

    /// @dev Up to three unclaimed leaves of `account` in market `m`'s settled checkpoints, from a point set by `pick`.
    function _pendingOf(uint256 m, address account, uint256 pick)
        internal
        view
        returns (uint256[] memory ids, uint256[] memory amounts, bytes32[][] memory proofs)
    {
        ids = new uint256[](3);
        amounts = new uint256[](3);
        proofs = new bytes32[][](3);
        uint256 n;
        uint256 count = checkpointCount[m];
        for (uint256 k = 0; k < count && n < 3; ++k) {
            uint256 checkpointId = (pick % count + k) % count + 1;
            if (_checkpoints[m][checkpointId].state != SETTLED || claimsBy[m][checkpointId][account] != 0) continue;
            Leaf[] storage all = _leaves[m][checkpointId];
            for (uint256 i = 0; i < all.length; ++i) {
                if (all[i].account != account) continue;
                ids[n] = checkpointId;
                amounts[n] = all[i].amount;
                proofs[n] = PayoutTree.proof(_leafHashes(checkpointId, all), i);
                n++;
                break;
            }
        }
        assembly ("memory-safe") {
            mstore(ids, n)
            mstore(amounts, n)
            mstore(proofs, n)
        }
    }

    function _withFirstTwice(uint256[] memory ids, uint256[] memory amounts, bytes32[][] memory proofs)
        internal
        pure
        returns (uint256[] memory, uint256[] memory, bytes32[][] memory)
    {
        uint256 n = ids.length;
        uint256[] memory ids2 = new uint256[](n + 1);
        uint256[] memory amounts2 = new uint256[](n + 1);
        bytes32[][] memory proofs2 = new bytes32[][](n + 1);
        for (uint256 i = 0; i < n; ++i) {
            (ids2[i], amounts2[i], proofs2[i]) = (ids[i], amounts[i], proofs[i]);
        }
        (ids2[n], amounts2[n], proofs2[n]) = (ids[0], amounts[0], proofs[0]);
        return (ids2, amounts2, proofs2);
    }

    /// @dev A model with an open (and/or billed) checkpoint, over both markets, chosen by `pick`.
    function _pickActive(uint256 pick, bool open, bool billed)
        internal
        view
        returns (bool found, uint256 m, uint256 id)
    {
        uint256[] memory candidates = new uint256[](2 * MAX_MODELS);
        uint256 n;
        for (m = 0; m < 2; ++m) {
            for (id = 1; id <= modelCount[m]; ++id) {
                uint256 checkpointId = _models[m][id].open;
                if (checkpointId == 0) continue;
                SplitLedgerMarket.CheckpointState state = _checkpoints[m][checkpointId].state;
                if ((open && state == OPEN) || (billed && state == BILLED)) {
                    candidates[n++] = m * (MAX_MODELS + 1) + id;
                }
            }
        }
        if (n == 0) return (false, 0, 0);
        uint256 chosen = candidates[pick % n];
        return (true, chosen / (MAX_MODELS + 1), chosen % (MAX_MODELS + 1));
    }

    /// @dev A leaf of a settled checkpoint whose account has (or has not) claimed there, chosen by `pick`.
    function _pickLeaf(uint256 pick, bool claimedWanted)
        internal
        view
        returns (bool found, uint256 m, uint256 checkpointId, uint256 index)
    {
        uint256 n;
        for (uint256 round = 0; round < 2; ++round) {
            uint256 k;
            for (m = 0; m < 2; ++m) {
                for (checkpointId = 1; checkpointId <= checkpointCount[m]; ++checkpointId) {
                    if (_checkpoints[m][checkpointId].state != SETTLED) continue;
                    Leaf[] storage all = _leaves[m][checkpointId];
                    for (index = 0; index < all.length; ++index) {
                        if ((claimsBy[m][checkpointId][all[index].account] != 0) != claimedWanted) continue;
                        if (round == 1 && k == pick % n) return (true, m, checkpointId, index);
                        k++;
                    }
                }
            }
            if (k == 0) return (false, 0, 0, 0);
            n = k;
        }
    }

    function _leafHashes(uint256 checkpointId, Leaf[] memory all) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](all.length);
        for (uint256 i = 0; i < all.length; ++i) {
            hashes[i] = PayoutTree.leaf(checkpointId, all[i].account, all[i].amount);
        }
    }

    function _registerFunded(
        uint256 m,
        address owner,
        address host,
        uint32 baseline,
        uint128 price,
        uint64 cap,
        uint256 escrow
    ) internal {
        uint256 id = _register(m, owner, host, baseline);
        _try(owner, m, abi.encodeCall(SplitLedgerMarket.setQuote, (id, price, cap)), "");
        _models[m][id].price = price;
        _models[m][id].cap = cap;
        _try(owner, m, abi.encodeCall(SplitLedgerMarket.deposit, (id, escrow)), "");
        _models[m][id].escrow += _net(m, escrow);
        tokensIn[m] += _net(m, escrow);
    }

    function _register(uint256 m, address owner, address host, uint32 baseline) internal returns (uint256 id) {
        bytes32 weights = _initialWeights(m, modelCount[m] + 1);
        bytes memory ret = _try(owner, m, _registerCall(host, weights, baseline), "");
        id = ++modelCount[m];
        vm.assertEq(abi.decode(ret, (uint256)), id, "register: id");
        ModelMirror storage model = _models[m][id];
        model.owner = owner;
        model.host = host;
        model.initialWeights = weights;
        model.baseline = baseline;
        model.weights = weights;
        model.best = baseline;
    }

    function _registerCall(address host, bytes32 weights, uint32 baseline) internal pure returns (bytes memory) {
        return abi.encodeCall(
            SplitLedgerMarket.registerModel,
            (
                host,
                keccak256("model"),
                keccak256("test set"),
                keccak256("fields"),
                keccak256("policy"),
                weights,
                baseline
            )
        );
    }

    function _fund(uint256 m, address account) internal {
        deal(address(_tokens[m]), account, FUNDS, true);
        vm.prank(account);
        _tokens[m].approve(address(_markets[m]), type(uint256).max);
    }

    /// @dev Token balances of the market and of every actor.
    function _balances(uint256 m) internal view returns (uint256[] memory out) {
        address[] memory all = actors();
        out = new uint256[](all.length + 1);
        for (uint256 i = 0; i < all.length; ++i) {
            out[i] = _tokens[m].balanceOf(all[i]);
        }
        out[all.length] = _tokens[m].balanceOf(address(_markets[m]));
    }

    function _modelId(uint256 m, uint256 seed) internal view returns (uint256) {
        // One draw in sixteen names the model after the last (UnknownModel); three in four one of the three
        // models registered funded and quoted, the rest any model.
        uint256 kind = seed % 16;
        if (kind == 0) return modelCount[m] + 1;
        return _bound(seed >> 4, 1, kind < 12 ? 3 : modelCount[m]);
    }

    function _baseline(uint256 seed) internal pure returns (uint32) {
        uint256 kind = seed % 4;
        if (kind == 0) return 0;
        if (kind == 1) return SCALE;
        if (kind == 2) return SCALE - uint32(_bound(seed, 1, 50));
        return uint32(_bound(seed, 0, SCALE));
    }

    function _initialWeights(uint256 m, uint256 id) internal pure returns (bytes32) {
        return keccak256(abi.encode("initial weights", m, id));
    }

    function _trainedWeights(uint256 m, uint256 checkpointId) internal pure returns (bytes32) {
        return keccak256(abi.encode("trained weights", m, checkpointId));
    }

    /// @dev What arrives of `amount` sent in market `m`'s token (FeeOnTransferToken burns 1 % of it).
    function _net(uint256 m, uint256 amount) internal view returns (uint256) {
        return _chargesFee[m] ? amount - (amount * FEE_BPS) / 10_000 : amount;
    }

    function _err(bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function _happened(bytes32 outcome) internal {
        outcomes[outcome] += 1;
    }
}
