// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title IHalo2VerifierReusable
/// @notice What the market calls of ezkl's reusable Halo2 verifier (docs/zk.md, "On chain").
/// @dev ezkl 23 declares a third return value, the rescaled instances, whose ABI encoding is malformed: the
///      market calls it with a low-level staticcall and reads only the first two words (success, VKA digest).
interface IHalo2VerifierReusable {
    function verifyProof(bytes calldata proof, uint256[] calldata instances, bytes32[] calldata vka)
        external
        returns (bool success, bytes32 vkaDigest);
}

/// @title SplitLedgerMarket
/// @notice Escrow, quotes, checkpoints, bills, payouts and history anchors for hosted split
///         training. A model owner escrows tokens; the model's hosting node locks a group's budget
///         in a checkpoint, commits the bill, and either settles it (only on a strict accuracy
///         gain, or on holding 100 % once reached, paying the billed sources) or rolls it back
///         (returning the whole budget). The model's weights hash is kept unbroken: every checkpoint
///         opens from the weights the model holds (the registered ones, then the last settled
///         checkpoint's), so the owner can check that the model it fetches is the one it paid for.
/// @dev Payouts are pulled: settle only records the bill's Merkle root, so its gas does not grow
///      with rows or sources; each source claims its own leaf. Roles: a model's owner (escrow,
///      quote), its hosting node (checkpoints, bills, anchors), sources (claims) and proxies
///      (listings). Accuracy is an integer in parts per million of ACCURACY_SCALE.
contract SplitLedgerMarket is ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Accuracy values are parts per million: 1_000_000 is 100 %.
    uint32 public constant ACCURACY_SCALE = 1_000_000;

    enum CheckpointState {
        None,
        Open,
        Billed,
        Settled,
        RolledBack
    }

    /// @dev The registry entry as getModel answers it. Stored as a ModelRecord, which adds the mode flag.
    struct Model {
        address owner;
        address hostingNode;
        bytes32 modelHash;
        bytes32 testSetHash;
        bytes32 fieldTableHash;
        bytes32 policyHash;
        bytes32 weightsHash;
        uint256 escrow;
        uint128 pricePerRow;
        uint64 rowCap;
        uint32 bestAccuracy;
        uint256 openCheckpointId;
        uint256 checkpointCount;
    }

    /// @dev Model plus the mode flag, packed into the hosting node's slot: every call that must tell a verified
    ///      model from a plain one reads that slot anyway (the hosting-node check), so plain calls pay no cold
    ///      read of VerifiedTerms, and Model (getModel's ABI) does not change.
    struct ModelRecord {
        address owner;
        address hostingNode;
        bool verified;
        bytes32 modelHash;
        bytes32 testSetHash;
        bytes32 fieldTableHash;
        bytes32 policyHash;
        bytes32 weightsHash;
        uint256 escrow;
        uint128 pricePerRow;
        uint64 rowCap;
        uint32 bestAccuracy;
        uint256 openCheckpointId;
        uint256 checkpointCount;
    }

    /// @notice What a verified model's accuracy proofs are checked against (docs/zk.md).
    /// @param verifier ezkl's reusable Halo2 verifier, with the model's VKA registered in it.
    /// @param vkaDigest keccak-256 of the model circuit's verifying-key artifact words.
    /// @param testSetZkRoot keccak256(abi.encodePacked(X_1, Y_1, ..., X_K, Y_K)): the test set's chunk commitments.
    /// @param weightsCommitment Poseidon commitment of the model's current weights: the registered initial
    ///        ones, then each verified settle's (it moves as Model.weightsHash does).
    struct VerifiedTerms {
        address verifier;
        bytes32 vkaDigest;
        bytes32 testSetZkRoot;
        uint256 weightsCommitment;
    }

    /// @notice A proof that weights committed to `weightsCommitment` get `correct[k]` of `rows[k]` rows of chunk k
    ///         right, for every chunk of the registered test set, in order.
    /// @param weightsCommitment Poseidon commitment of the weights proven (instance W of every chunk).
    /// @param chunkCommitments X_1, Y_1, ..., X_K, Y_K: Poseidon hashes of each chunk's inputs and labels.
    /// @param correct Rows of each chunk the weights get right.
    /// @param rows Real (not padding) rows of each chunk.
    /// @param proofs One Halo2 proof per chunk.
    /// @param vka The circuit's verifying-key artifact words, as the verifier takes them.
    struct AccuracyProof {
        uint256 weightsCommitment;
        uint256[] chunkCommitments;
        uint256[] correct;
        uint256[] rows;
        bytes[] proofs;
        bytes32[] vka;
    }

    /// @notice A verified checkpoint's Poseidon weights commitments: at open, and the one its close proved.
    struct ProvenWeights {
        uint256 weightsCommitment;
        uint256 weightsCommitmentAfter;
    }

    struct Checkpoint {
        uint256 modelId;
        CheckpointState state;
        uint32 accuracyBefore;
        uint32 accuracyAfter;
        uint64 openedAt;
        uint64 maxRows;
        uint64 billedRows;
        uint128 pricePerRow;
        uint256 lockedBudget;
        uint256 billTotal;
        uint256 claimed;
        bytes32 weightsHash;
        bytes32 weightsHashAfter;
        bytes32 payoutRoot;
        bytes32 rowsRoot;
    }

    struct Anchor {
        bytes32 root;
        uint64 rowCount;
        uint64 firstRowIndex;
        uint64 blockNumber;
    }

    /// @notice The ERC-20 every escrow, budget and payout is denominated in.
    IERC20 public immutable token;
    /// @notice After this many seconds an unsettled checkpoint may be rolled back by the model owner,
    ///         so a vanished hosting node cannot lock the owner's budget forever.
    uint64 public immutable checkpointTimeout;

    /// @notice Number of registered models; model ids run from 1 to modelCount.
    uint256 public modelCount;
    /// @notice Number of checkpoints over all models; checkpoint ids run from 1 to checkpointCount.
    uint256 public checkpointCount;

    mapping(uint256 modelId => ModelRecord) private _models;
    mapping(uint256 modelId => VerifiedTerms) private _verifiedTerms;
    mapping(uint256 checkpointId => ProvenWeights) private _provenWeights;
    mapping(uint256 checkpointId => Checkpoint) private _checkpoints;
    mapping(uint256 checkpointId => mapping(address account => bool)) private _claimed;
    mapping(uint256 modelId => Anchor[]) private _anchors;
    mapping(uint256 modelId => uint64) private _anchoredRows;

    /// @notice Whether an address has registered as a source proxy.
    mapping(address proxy => bool) public isProxy;
    /// @notice The lowest row id a proxy may list next; listings never overlap.
    mapping(address proxy => uint64) public nextRowId;

    event ModelRegistered(
        uint256 indexed modelId,
        address indexed owner,
        address indexed hostingNode,
        bytes32 modelHash,
        bytes32 testSetHash,
        bytes32 fieldTableHash,
        bytes32 policyHash,
        bytes32 weightsHash,
        uint32 baselineAccuracy
    );
    event EscrowDeposited(uint256 indexed modelId, address indexed from, uint256 amount, uint256 escrow);
    event EscrowWithdrawn(uint256 indexed modelId, address indexed to, uint256 amount, uint256 escrow);
    event QuoteSet(uint256 indexed modelId, uint128 pricePerRow, uint64 rowCap);
    event CheckpointOpened(
        uint256 indexed checkpointId,
        uint256 indexed modelId,
        bytes32 weightsHash,
        uint32 accuracyBefore,
        uint64 maxRows,
        uint128 pricePerRow,
        uint256 lockedBudget
    );
    event BillCommitted(
        uint256 indexed checkpointId, bytes32 payoutRoot, bytes32 rowsRoot, uint64 rowCount, uint256 total
    );
    event CheckpointSettled(
        uint256 indexed checkpointId,
        uint256 indexed modelId,
        uint32 accuracyAfter,
        bytes32 weightsHashAfter,
        uint256 paid,
        uint256 refunded
    );
    event CheckpointRolledBack(
        uint256 indexed checkpointId,
        uint256 indexed modelId,
        address indexed by,
        uint32 accuracyAfter,
        bytes32 weightsHashAfter,
        uint256 refunded
    );
    event VerifiedModelRegistered(
        uint256 indexed modelId,
        address indexed verifier,
        bytes32 vkaDigest,
        bytes32 testSetZkRoot,
        uint256 weightsCommitment
    );
    /// @notice A verified settle or rollback proved `correct` of `rows` test rows for these weights.
    event CheckpointProven(uint256 indexed checkpointId, uint256 weightsCommitment, uint256 correct, uint256 rows);
    event PayoutClaimed(uint256 indexed checkpointId, address indexed account, uint256 amount);
    event HistoryAnchored(
        uint256 indexed modelId, uint256 indexed anchorIndex, bytes32 root, uint64 rowCount, uint64 firstRowIndex
    );
    event ProxyRegistered(address indexed proxy, string endpoint);
    event RowsListed(
        address indexed proxy, uint64 firstRowId, uint64 rowCount, bytes32 indexed compositionHash, string[] fields
    );

    error ZeroAddress();
    error ZeroAmount();
    error AccuracyOutOfRange(uint32 accuracy);
    error UnknownModel(uint256 modelId);
    error UnknownCheckpoint(uint256 checkpointId);
    error NotModelOwner(uint256 modelId, address caller);
    error NotHostingNode(uint256 modelId, address caller);
    error InsufficientEscrow(uint256 modelId, uint256 available, uint256 needed);
    error NoQuote(uint256 modelId);
    error RowCapExceeded(uint64 rows, uint64 rowCap);
    error CheckpointAlreadyOpen(uint256 modelId, uint256 checkpointId);
    error AccuracyMismatch(uint32 given, uint32 best);
    error WrongCheckpointState(uint256 checkpointId, CheckpointState state);
    error BillRowsExceedLocked(uint64 rows, uint64 maxRows);
    error BillTotalMismatch(uint256 total, uint256 expected);
    error EmptyPayoutRoot();
    error NoAccuracyGain(uint32 accuracyAfter, uint32 best);
    error CheckpointNotExpired(uint256 checkpointId, uint64 expiresAt);
    error AlreadyClaimed(uint256 checkpointId, address account);
    error InvalidProof(uint256 checkpointId, address account, uint256 amount);
    error ClaimExceedsBill(uint256 checkpointId, uint256 claimed, uint256 billTotal);
    error EmptyRoot();
    error UnknownAnchor(uint256 modelId, uint256 anchorIndex);
    error NotProxy(address caller);
    error ListingOverlaps(uint64 firstRowId, uint64 nextRowId);
    error EmptyComposition();
    error LengthMismatch();
    /// @dev A weights hash that must name real weights is zero: the initial one at registration, the one a
    ///      settle moves the model to, or the one a hosting node's rollback records.
    error ZeroWeightsHash();
    /// @dev openCheckpoint was given weights other than those the model holds (registered or last settled).
    error WeightsHashMismatch(bytes32 given, bytes32 expected);
    /// @dev A plain settle or hosting node's rollback of a verified model: it must come with a proof.
    error ProofRequired(uint256 modelId);
    /// @dev A verified settle or rollback of a plain model.
    error NotVerified(uint256 modelId);
    /// @dev A verified registration without its VKA digest, test-set root or weights commitment.
    error ZeroCommitment();
    /// @dev The proof's chunk commitments are not the registered test set's.
    error TestSetCommitmentMismatch();
    /// @dev The proof's VKA is not the registered one (its words, or the digest the verifier answered).
    error VkaMismatch();
    /// @dev The verifier reverted or answered false on chunk `chunk`'s proof.
    error ProofRefused(uint256 checkpointId, uint256 chunk);
    /// @dev The proofs count no real test row.
    error NoProvenRows(uint256 checkpointId);
    /// @dev The accuracy given is not correct * ACCURACY_SCALE / rows of the proofs (rounded down).
    error ProvenAccuracyMismatch(uint32 claimed, uint256 proven);

    modifier onlyModelOwner(uint256 modelId) {
        if (_models[modelId].owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
        _;
    }

    modifier onlyHostingNode(uint256 modelId) {
        if (_models[modelId].hostingNode != msg.sender) revert NotHostingNode(modelId, msg.sender);
        _;
    }

    modifier knownModel(uint256 modelId) {
        if (modelId == 0 || modelId > modelCount) revert UnknownModel(modelId);
        _;
    }

    /// @param token_ The ERC-20 used for every escrow and payout.
    /// @param checkpointTimeout_ Seconds after opening when the model owner may roll a checkpoint back.
    constructor(IERC20 token_, uint64 checkpointTimeout_) {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
        checkpointTimeout = checkpointTimeout_;
    }

    // ------------------------------------------------------------------ registry, escrow, quote

    /// @notice Registers a model with its commitments; the caller becomes its owner.
    /// @param hostingNode The only address allowed to open, bill, settle and anchor for this model.
    /// @param modelHash keccak-256 of the model file the hosting node received.
    /// @param testSetHash keccak-256 of the target test set.
    /// @param fieldTableHash keccak-256 of the standard field table data sources map onto.
    /// @param policyHash keccak-256 of the privacy policy sources agree to before selling rows.
    /// @param initialWeightsHash Weights hash (docs/model-format.md, "Weights hash") of the weights the hosting
    ///        node starts training from; the first checkpoint must open from it. Must not be zero.
    /// @param baselineAccuracy Test accuracy (ppm) of the untrained model; the first gain is measured against it.
    /// @return modelId The new model's id.
    function registerModel(
        address hostingNode,
        bytes32 modelHash,
        bytes32 testSetHash,
        bytes32 fieldTableHash,
        bytes32 policyHash,
        bytes32 initialWeightsHash,
        uint32 baselineAccuracy
    ) external returns (uint256 modelId) {
        modelId = _register(
            hostingNode, modelHash, testSetHash, fieldTableHash, policyHash, initialWeightsHash, baselineAccuracy
        );
    }

    /// @notice Registers a model in verified mode, fixed for its life: every settle, and every rollback by its
    ///         hosting node, must prove its accuracy on the committed test set (docs/zk.md). The other
    ///         arguments are registerModel's.
    /// @param terms The verifier, the circuit's VKA digest, the test set's chunk-commitment root and the
    ///        Poseidon commitment of the initial weights (the same weights as initialWeightsHash).
    /// @return modelId The new model's id.
    function registerVerifiedModel(
        address hostingNode,
        bytes32 modelHash,
        bytes32 testSetHash,
        bytes32 fieldTableHash,
        bytes32 policyHash,
        bytes32 initialWeightsHash,
        uint32 baselineAccuracy,
        VerifiedTerms calldata terms
    ) external returns (uint256 modelId) {
        if (terms.verifier == address(0)) revert ZeroAddress();
        if (terms.vkaDigest == bytes32(0) || terms.testSetZkRoot == bytes32(0) || terms.weightsCommitment == 0) {
            revert ZeroCommitment();
        }
        modelId = _register(
            hostingNode, modelHash, testSetHash, fieldTableHash, policyHash, initialWeightsHash, baselineAccuracy
        );
        _models[modelId].verified = true;
        _verifiedTerms[modelId] = terms;
        emit VerifiedModelRegistered(
            modelId, terms.verifier, terms.vkaDigest, terms.testSetZkRoot, terms.weightsCommitment
        );
    }

    function _register(
        address hostingNode,
        bytes32 modelHash,
        bytes32 testSetHash,
        bytes32 fieldTableHash,
        bytes32 policyHash,
        bytes32 initialWeightsHash,
        uint32 baselineAccuracy
    ) private returns (uint256 modelId) {
        if (hostingNode == address(0)) revert ZeroAddress();
        if (initialWeightsHash == bytes32(0)) revert ZeroWeightsHash();
        if (baselineAccuracy > ACCURACY_SCALE) revert AccuracyOutOfRange(baselineAccuracy);
        modelId = ++modelCount;
        ModelRecord storage model = _models[modelId];
        model.owner = msg.sender;
        model.hostingNode = hostingNode;
        model.modelHash = modelHash;
        model.testSetHash = testSetHash;
        model.fieldTableHash = fieldTableHash;
        model.policyHash = policyHash;
        model.weightsHash = initialWeightsHash;
        model.bestAccuracy = baselineAccuracy;
        emit ModelRegistered(
            modelId,
            msg.sender,
            hostingNode,
            modelHash,
            testSetHash,
            fieldTableHash,
            policyHash,
            initialWeightsHash,
            baselineAccuracy
        );
    }

    /// @notice Adds tokens to a model's escrow. Anyone may fund a model; only its owner withdraws.
    /// @dev Credits what actually arrived, so fee-on-transfer tokens cannot inflate the escrow.
    /// @param modelId The model to fund.
    /// @param amount Tokens to pull from the caller (needs a prior approval).
    function deposit(uint256 modelId, uint256 amount) external nonReentrant knownModel(modelId) {
        if (amount == 0) revert ZeroAmount();
        uint256 balanceBefore = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - balanceBefore;
        ModelRecord storage model = _models[modelId];
        model.escrow += received;
        emit EscrowDeposited(modelId, msg.sender, received, model.escrow);
    }

    /// @notice Returns unlocked escrow to the model owner (or wherever the owner says).
    /// @param modelId The model whose escrow to draw on.
    /// @param amount Tokens to withdraw; budgets locked in open checkpoints are not available.
    /// @param to Receiver of the tokens.
    function withdraw(uint256 modelId, uint256 amount, address to)
        external
        nonReentrant
        knownModel(modelId)
        onlyModelOwner(modelId)
    {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        ModelRecord storage model = _models[modelId];
        if (amount > model.escrow) revert InsufficientEscrow(modelId, model.escrow, amount);
        model.escrow -= amount;
        emit EscrowWithdrawn(modelId, to, amount, model.escrow);
        token.safeTransfer(to, amount);
    }

    /// @notice Sets the owner's quote: what one bought row is paid, and how many rows one checkpoint may buy.
    /// @dev An open checkpoint keeps the price it was opened with.
    /// @param modelId The model the quote is for.
    /// @param pricePerRow Tokens paid per row used in a settled checkpoint; must be positive.
    /// @param rowCap Most rows one checkpoint may lock budget for; 0 means no cap.
    function setQuote(uint256 modelId, uint128 pricePerRow, uint64 rowCap)
        external
        knownModel(modelId)
        onlyModelOwner(modelId)
    {
        if (pricePerRow == 0) revert ZeroAmount();
        ModelRecord storage model = _models[modelId];
        model.pricePerRow = pricePerRow;
        model.rowCap = rowCap;
        emit QuoteSet(modelId, pricePerRow, rowCap);
    }

    // ------------------------------------------------------------------ checkpoints

    /// @notice Takes a backup point on chain: locks the budget for up to `maxRows` rows at the current quote.
    /// @param modelId The model being trained.
    /// @param maxRows Rows this group may buy; the budget locked is maxRows times the quoted price.
    /// @param weightsHash Weights hash of the target model at the backup point; must equal the model's current
    ///        weights hash, so no checkpoint can start from weights the owner did not register or pay for.
    /// @param accuracyBefore Test accuracy (ppm) at the backup point; must equal the model's best so far.
    /// @return checkpointId The new checkpoint's id.
    function openCheckpoint(uint256 modelId, uint64 maxRows, bytes32 weightsHash, uint32 accuracyBefore)
        external
        knownModel(modelId)
        onlyHostingNode(modelId)
        returns (uint256 checkpointId)
    {
        ModelRecord storage model = _models[modelId];
        if (model.openCheckpointId != 0) revert CheckpointAlreadyOpen(modelId, model.openCheckpointId);
        if (model.pricePerRow == 0) revert NoQuote(modelId);
        if (maxRows == 0) revert ZeroAmount();
        if (model.rowCap != 0 && maxRows > model.rowCap) revert RowCapExceeded(maxRows, model.rowCap);
        if (accuracyBefore != model.bestAccuracy) revert AccuracyMismatch(accuracyBefore, model.bestAccuracy);
        if (weightsHash != model.weightsHash) revert WeightsHashMismatch(weightsHash, model.weightsHash);
        uint256 budget = uint256(maxRows) * model.pricePerRow;
        if (budget > model.escrow) revert InsufficientEscrow(modelId, model.escrow, budget);

        model.escrow -= budget;
        checkpointId = ++checkpointCount;
        model.openCheckpointId = checkpointId;
        model.checkpointCount += 1;
        Checkpoint storage checkpoint = _checkpoints[checkpointId];
        checkpoint.modelId = modelId;
        checkpoint.state = CheckpointState.Open;
        checkpoint.accuracyBefore = accuracyBefore;
        checkpoint.openedAt = uint64(block.timestamp);
        checkpoint.maxRows = maxRows;
        checkpoint.pricePerRow = model.pricePerRow;
        checkpoint.lockedBudget = budget;
        checkpoint.weightsHash = weightsHash;
        emit CheckpointOpened(checkpointId, modelId, weightsHash, accuracyBefore, maxRows, model.pricePerRow, budget);
    }

    /// @notice Commits the bill of an open checkpoint: who is owed what, and which rows were used.
    /// @param checkpointId The open checkpoint.
    /// @param payoutRoot Merkle root of payout leaves keccak256(keccak256(abi.encode(checkpointId, account, amount))).
    /// @param rowsRoot Merkle root of the bill's row records (source, row hash, price), for auditors.
    /// @param rowCount Rows actually used and billed; at most the rows locked.
    /// @param total Sum of all payouts; must be rowCount times the checkpoint's price.
    function commitBill(uint256 checkpointId, bytes32 payoutRoot, bytes32 rowsRoot, uint64 rowCount, uint256 total)
        external
    {
        Checkpoint storage checkpoint = _hostedCheckpoint(checkpointId);
        if (checkpoint.state != CheckpointState.Open) revert WrongCheckpointState(checkpointId, checkpoint.state);
        if (rowCount > checkpoint.maxRows) revert BillRowsExceedLocked(rowCount, checkpoint.maxRows);
        uint256 expected = uint256(rowCount) * checkpoint.pricePerRow;
        if (total != expected) revert BillTotalMismatch(total, expected);
        if (total != 0 && payoutRoot == bytes32(0)) revert EmptyPayoutRoot();

        checkpoint.state = CheckpointState.Billed;
        checkpoint.payoutRoot = payoutRoot;
        checkpoint.rowsRoot = rowsRoot;
        checkpoint.billedRows = rowCount;
        checkpoint.billTotal = total;
        emit BillCommitted(checkpointId, payoutRoot, rowsRoot, rowCount, total);
    }

    /// @notice Settles a billed checkpoint whose group raised test accuracy: the bill becomes claimable,
    ///         the unused part of the budget returns to escrow, and the model's weights become the trained ones.
    /// @dev Constant gas: nothing here loops over rows or sources. The rule is a strict gain, except at the
    ///      cap: once the best is ACCURACY_SCALE nothing can exceed it, so a group that keeps 100 % settles
    ///      (accuracy not lower -> keep); without that no checkpoint could ever settle again (docs/market.md).
    /// @param checkpointId The billed checkpoint.
    /// @param accuracyAfter Test accuracy (ppm) after the group; strictly above the model's best, or
    ///        ACCURACY_SCALE when the best already is.
    /// @param weightsHashAfter Weights hash of the trained target model; becomes the model's weights hash,
    ///        which the next checkpoint must open from. Must not be zero.
    function settleCheckpoint(uint256 checkpointId, uint32 accuracyAfter, bytes32 weightsHashAfter) external {
        (Checkpoint storage checkpoint, ModelRecord storage model) =
            _settleable(checkpointId, accuracyAfter, weightsHashAfter, false);
        _settle(checkpointId, checkpoint, model, accuracyAfter, weightsHashAfter);
    }

    /// @notice settleCheckpoint for a verified model: the accuracy is the one `proof` proves for the weights
    ///         committed to `proof.weightsCommitment`, which become the model's Poseidon commitment.
    /// @dev The plain rules are checked first (cheap), then the proof: its external calls are staticcalls to
    ///      the registered verifier (views), made before any state is written.
    /// @param checkpointId The billed checkpoint.
    /// @param accuracyAfter As in settleCheckpoint; must equal the proof's correct * ACCURACY_SCALE / rows.
    /// @param weightsHashAfter As in settleCheckpoint (the keccak weights hash of the same trained weights).
    /// @param proof The accuracy proof over every chunk of the registered test set.
    function settleCheckpointVerified(
        uint256 checkpointId,
        uint32 accuracyAfter,
        bytes32 weightsHashAfter,
        AccuracyProof calldata proof
    ) external {
        (Checkpoint storage checkpoint, ModelRecord storage model) =
            _settleable(checkpointId, accuracyAfter, weightsHashAfter, true);
        VerifiedTerms storage terms = _verifiedTerms[checkpoint.modelId];
        _prove(checkpointId, terms, accuracyAfter, proof);

        terms.weightsCommitment = proof.weightsCommitment;
        _settle(checkpointId, checkpoint, model, accuracyAfter, weightsHashAfter);
    }

    /// @notice Returns to the backup point: the whole locked budget goes back to escrow, nobody is paid,
    ///         and the model keeps the weights it held when the checkpoint opened.
    /// @dev The hosting node may roll back at any time; the model owner only after checkpointTimeout.
    ///      weightsHashAfter is a record for auditors (what the discarded weights were), never the model's
    ///      weights: the hosting node knows them and must give them (non-zero); the owner rolling back a
    ///      vanished node's checkpoint cannot know them and may give zero.
    /// @param checkpointId An open or billed checkpoint.
    /// @param accuracyAfter Test accuracy (ppm) the group reached, recorded for auditors (0 if unknown).
    /// @param weightsHashAfter Weights hash of the trained, discarded target model (0 only from the owner).
    function rollbackCheckpoint(uint256 checkpointId, uint32 accuracyAfter, bytes32 weightsHashAfter) external {
        (Checkpoint storage checkpoint, ModelRecord storage model, bool verified) =
            _rollbackable(checkpointId, accuracyAfter, weightsHashAfter, false);
        // the owner's proof-free rollback of a verified model still records the commitment it opened from
        if (verified) _provenWeights[checkpointId].weightsCommitment = _verifiedTerms[checkpoint.modelId].weightsCommitment;
        _rollback(checkpointId, checkpoint, model, accuracyAfter, weightsHashAfter);
    }

    /// @notice rollbackCheckpoint by a verified model's hosting node: the accuracy it records for the discarded
    ///         weights is the one `proof` proves. (The owner's rollback after the timeout stays proof-free and
    ///         goes through rollbackCheckpoint.)
    /// @param checkpointId An open or billed checkpoint.
    /// @param accuracyAfter The discarded weights' accuracy; must equal the proof's.
    /// @param weightsHashAfter Weights hash of the trained, discarded target model; not zero.
    /// @param proof The accuracy proof of the discarded weights over every chunk of the registered test set.
    function rollbackCheckpointVerified(
        uint256 checkpointId,
        uint32 accuracyAfter,
        bytes32 weightsHashAfter,
        AccuracyProof calldata proof
    ) external {
        (Checkpoint storage checkpoint, ModelRecord storage model,) =
            _rollbackable(checkpointId, accuracyAfter, weightsHashAfter, true);
        _prove(checkpointId, _verifiedTerms[checkpoint.modelId], accuracyAfter, proof);

        _rollback(checkpointId, checkpoint, model, accuracyAfter, weightsHashAfter);
    }

    /// @notice Pays the caller its share of a settled checkpoint's bill.
    /// @param checkpointId A settled checkpoint.
    /// @param amount The caller's amount in the bill's payout leaf.
    /// @param proof Merkle proof of keccak256(keccak256(abi.encode(checkpointId, msg.sender, amount))) to the payout root.
    function claim(uint256 checkpointId, uint256 amount, bytes32[] calldata proof) external nonReentrant {
        _claim(checkpointId, amount, proof);
    }

    /// @notice Claims the caller's payouts from several settled checkpoints in one transaction.
    /// @param checkpointIds Settled checkpoints, one per claim.
    /// @param amounts The caller's amount in each checkpoint's payout leaf.
    /// @param proofs One Merkle proof per checkpoint.
    function claimMany(uint256[] calldata checkpointIds, uint256[] calldata amounts, bytes32[][] calldata proofs)
        external
        nonReentrant
    {
        if (checkpointIds.length != amounts.length || checkpointIds.length != proofs.length) {
            revert LengthMismatch();
        }
        for (uint256 i = 0; i < checkpointIds.length; ++i) {
            _claim(checkpointIds[i], amounts[i], proofs[i]);
        }
    }

    // ------------------------------------------------------------------ history anchors and proxies

    /// @notice Anchors the Merkle root of the row hashes added to a model's history set since the last anchor.
    /// @param modelId The model whose history set this is.
    /// @param root Merkle root over leaves keccak256(keccak256(abi.encode(rowHash))).
    /// @param rowCount Number of row hashes under the root.
    /// @return anchorIndex Position of this anchor in the model's anchor list.
    function anchorHistory(uint256 modelId, bytes32 root, uint64 rowCount)
        external
        knownModel(modelId)
        onlyHostingNode(modelId)
        returns (uint256 anchorIndex)
    {
        if (root == bytes32(0)) revert EmptyRoot();
        if (rowCount == 0) revert ZeroAmount();
        uint64 firstRowIndex = _anchoredRows[modelId];
        anchorIndex = _anchors[modelId].length;
        _anchors[modelId].push(
            Anchor({root: root, rowCount: rowCount, firstRowIndex: firstRowIndex, blockNumber: uint64(block.number)})
        );
        _anchoredRows[modelId] = firstRowIndex + rowCount;
        emit HistoryAnchored(modelId, anchorIndex, root, rowCount, firstRowIndex);
    }

    /// @notice Registers the caller as a source proxy, or updates its endpoint.
    /// @param endpoint Where the proxy's HTTP API is served, for hosting nodes to find it.
    function registerProxy(string calldata endpoint) external {
        isProxy[msg.sender] = true;
        emit ProxyRegistered(msg.sender, endpoint);
    }

    /// @notice Publishes a range of row ids the calling proxy holds and their field composition.
    /// @dev Carries field names only: never values and never the source's minimum price.
    /// @param firstRowId First row id of the range; at least the proxy's nextRowId.
    /// @param rowCount Number of consecutive row ids listed.
    /// @param fields Standard field names every row in the range holds.
    function publishListing(uint64 firstRowId, uint64 rowCount, string[] calldata fields) external {
        if (!isProxy[msg.sender]) revert NotProxy(msg.sender);
        if (rowCount == 0) revert ZeroAmount();
        if (fields.length == 0) revert EmptyComposition();
        uint64 next = nextRowId[msg.sender];
        if (firstRowId < next) revert ListingOverlaps(firstRowId, next);
        nextRowId[msg.sender] = firstRowId + rowCount;
        emit RowsListed(msg.sender, firstRowId, rowCount, keccak256(abi.encode(fields)), fields);
    }

    // ------------------------------------------------------------------ views

    /// @notice A model's registry entry, escrow and quote.
    function getModel(uint256 modelId) external view knownModel(modelId) returns (Model memory model) {
        ModelRecord storage record = _models[modelId];
        model.owner = record.owner;
        model.hostingNode = record.hostingNode;
        model.modelHash = record.modelHash;
        model.testSetHash = record.testSetHash;
        model.fieldTableHash = record.fieldTableHash;
        model.policyHash = record.policyHash;
        model.weightsHash = record.weightsHash;
        model.escrow = record.escrow;
        model.pricePerRow = record.pricePerRow;
        model.rowCap = record.rowCap;
        model.bestAccuracy = record.bestAccuracy;
        model.openCheckpointId = record.openCheckpointId;
        model.checkpointCount = record.checkpointCount;
    }

    /// @notice Whether a model was registered in verified mode.
    function isVerified(uint256 modelId) external view knownModel(modelId) returns (bool) {
        return _models[modelId].verified;
    }

    /// @notice A verified model's terms; weightsCommitment is its current Poseidon weights commitment.
    function getVerifiedTerms(uint256 modelId) external view knownModel(modelId) returns (VerifiedTerms memory) {
        if (!_models[modelId].verified) revert NotVerified(modelId);
        return _verifiedTerms[modelId];
    }

    /// @notice A verified model's checkpoint's Poseidon commitments: the one it opened from, and the one its
    ///         close proved (zero while it is open, and after the owner's proof-free timeout rollback).
    /// @dev Recorded at the close, not at open, so that openCheckpoint costs plain models nothing more: the
    ///      model's commitment cannot move while its one open checkpoint is open, so an open checkpoint's is the
    ///      model's current one.
    function getProvenWeights(uint256 checkpointId) external view returns (ProvenWeights memory weights) {
        Checkpoint storage checkpoint = _knownCheckpoint(checkpointId);
        if (!_models[checkpoint.modelId].verified) revert NotVerified(checkpoint.modelId);
        if (checkpoint.state == CheckpointState.Open || checkpoint.state == CheckpointState.Billed) {
            weights.weightsCommitment = _verifiedTerms[checkpoint.modelId].weightsCommitment;
            return weights;
        }
        return _provenWeights[checkpointId];
    }

    /// @notice A checkpoint's full record.
    function getCheckpoint(uint256 checkpointId) external view returns (Checkpoint memory) {
        return _knownCheckpoint(checkpointId);
    }

    /// @notice Whether `account` has claimed its payout from `checkpointId`.
    function isClaimed(uint256 checkpointId, address account) external view returns (bool) {
        return _claimed[checkpointId][account];
    }

    /// @notice Number of history anchors of a model.
    function anchorCount(uint256 modelId) external view returns (uint256) {
        return _anchors[modelId].length;
    }

    /// @notice Total row hashes anchored for a model.
    function anchoredRows(uint256 modelId) external view returns (uint64) {
        return _anchoredRows[modelId];
    }

    /// @notice One history anchor of a model.
    function getAnchor(uint256 modelId, uint256 anchorIndex) external view returns (Anchor memory) {
        if (anchorIndex >= _anchors[modelId].length) revert UnknownAnchor(modelId, anchorIndex);
        return _anchors[modelId][anchorIndex];
    }

    /// @notice Whether a row hash is under a model's anchored history root.
    /// @param modelId The model.
    /// @param anchorIndex Which anchor's root to check against.
    /// @param rowHash The row hash (the leaf is derived from it as in anchorHistory).
    /// @param proof Merkle proof of the leaf.
    function verifyAnchoredRow(uint256 modelId, uint256 anchorIndex, bytes32 rowHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        if (anchorIndex >= _anchors[modelId].length) revert UnknownAnchor(modelId, anchorIndex);
        return MerkleProof.verifyCalldata(proof, _anchors[modelId][anchorIndex].root, historyLeaf(rowHash));
    }

    /// @notice The payout leaf the bill's Merkle tree must hold for `account` in `checkpointId`.
    function payoutLeaf(uint256 checkpointId, address account, uint256 amount) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(checkpointId, account, amount))));
    }

    /// @notice The history leaf of a row hash.
    function historyLeaf(bytes32 rowHash) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(rowHash))));
    }

    // ------------------------------------------------------------------ internals

    function _claim(uint256 checkpointId, uint256 amount, bytes32[] calldata proof) private {
        Checkpoint storage checkpoint = _knownCheckpoint(checkpointId);
        if (checkpoint.state != CheckpointState.Settled) revert WrongCheckpointState(checkpointId, checkpoint.state);
        if (amount == 0) revert ZeroAmount();
        if (_claimed[checkpointId][msg.sender]) revert AlreadyClaimed(checkpointId, msg.sender);
        if (!MerkleProof.verifyCalldata(proof, checkpoint.payoutRoot, payoutLeaf(checkpointId, msg.sender, amount))) {
            revert InvalidProof(checkpointId, msg.sender, amount);
        }
        // A dishonest bill could hold leaves summing past its total; the total is what was locked for it.
        uint256 claimedAfter = checkpoint.claimed + amount;
        if (claimedAfter > checkpoint.billTotal) revert ClaimExceedsBill(checkpointId, claimedAfter, checkpoint.billTotal);

        _claimed[checkpointId][msg.sender] = true;
        checkpoint.claimed = claimedAfter;
        emit PayoutClaimed(checkpointId, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @dev settleCheckpoint's checks, shared by both modes; `verified` is the mode the caller settles in.
    function _settleable(uint256 checkpointId, uint32 accuracyAfter, bytes32 weightsHashAfter, bool verified)
        private
        view
        returns (Checkpoint storage checkpoint, ModelRecord storage model)
    {
        checkpoint = _knownCheckpoint(checkpointId);
        model = _models[checkpoint.modelId];
        (address hostingNode, bool modelVerified) = _hostAndMode(model);
        if (hostingNode != msg.sender) revert NotHostingNode(checkpoint.modelId, msg.sender);
        if (modelVerified != verified) {
            if (verified) revert NotVerified(checkpoint.modelId);
            revert ProofRequired(checkpoint.modelId);
        }
        if (checkpoint.state != CheckpointState.Billed) revert WrongCheckpointState(checkpointId, checkpoint.state);
        if (accuracyAfter > ACCURACY_SCALE) revert AccuracyOutOfRange(accuracyAfter);
        if (weightsHashAfter == bytes32(0)) revert ZeroWeightsHash();
        bool holdsCap = accuracyAfter == ACCURACY_SCALE && model.bestAccuracy == ACCURACY_SCALE;
        if (accuracyAfter <= model.bestAccuracy && !holdsCap) {
            revert NoAccuracyGain(accuracyAfter, model.bestAccuracy);
        }
    }

    function _settle(
        uint256 checkpointId,
        Checkpoint storage checkpoint,
        ModelRecord storage model,
        uint32 accuracyAfter,
        bytes32 weightsHashAfter
    ) private {
        uint256 refunded = checkpoint.lockedBudget - checkpoint.billTotal;
        checkpoint.state = CheckpointState.Settled;
        checkpoint.accuracyAfter = accuracyAfter;
        checkpoint.weightsHashAfter = weightsHashAfter;
        model.bestAccuracy = accuracyAfter;
        model.weightsHash = weightsHashAfter;
        model.escrow += refunded;
        model.openCheckpointId = 0;
        emit CheckpointSettled(
            checkpointId, checkpoint.modelId, accuracyAfter, weightsHashAfter, checkpoint.billTotal, refunded
        );
    }

    /// @dev rollbackCheckpoint's checks, shared by both modes: the hosting node rolls back in its model's mode
    ///      (`withProof` says which call it made); the owner, after the timeout, only without a proof.
    function _rollbackable(uint256 checkpointId, uint32 accuracyAfter, bytes32 weightsHashAfter, bool withProof)
        private
        view
        returns (Checkpoint storage checkpoint, ModelRecord storage model, bool verified)
    {
        checkpoint = _knownCheckpoint(checkpointId);
        model = _models[checkpoint.modelId];
        address hostingNode;
        (hostingNode, verified) = _hostAndMode(model);
        if (msg.sender == hostingNode) {
            if (verified != withProof) {
                if (withProof) revert NotVerified(checkpoint.modelId);
                revert ProofRequired(checkpoint.modelId);
            }
            if (weightsHashAfter == bytes32(0)) revert ZeroWeightsHash();
        } else {
            if (withProof || msg.sender != model.owner) revert NotHostingNode(checkpoint.modelId, msg.sender);
            uint64 expiresAt = checkpoint.openedAt + checkpointTimeout;
            if (block.timestamp < expiresAt) revert CheckpointNotExpired(checkpointId, expiresAt);
        }
        if (checkpoint.state != CheckpointState.Open && checkpoint.state != CheckpointState.Billed) {
            revert WrongCheckpointState(checkpointId, checkpoint.state);
        }
        if (accuracyAfter > ACCURACY_SCALE) revert AccuracyOutOfRange(accuracyAfter);
    }

    function _rollback(
        uint256 checkpointId,
        Checkpoint storage checkpoint,
        ModelRecord storage model,
        uint32 accuracyAfter,
        bytes32 weightsHashAfter
    ) private {
        uint256 refunded = checkpoint.lockedBudget;
        checkpoint.state = CheckpointState.RolledBack;
        checkpoint.accuracyAfter = accuracyAfter;
        checkpoint.weightsHashAfter = weightsHashAfter;
        model.escrow += refunded;
        model.openCheckpointId = 0;
        emit CheckpointRolledBack(checkpointId, checkpoint.modelId, msg.sender, accuracyAfter, weightsHashAfter, refunded);
    }

    /// @dev Checks `proof` against the model's terms and that it proves `accuracyAfter`; records the proven
    ///      commitment on the checkpoint. Reverts, and writes nothing else, unless every chunk verifies.
    function _prove(uint256 checkpointId, VerifiedTerms storage terms, uint32 accuracyAfter, AccuracyProof calldata proof)
        private
    {
        (uint256 correct, uint256 rows) = _verifyChunks(checkpointId, terms, proof);
        if (rows == 0) revert NoProvenRows(checkpointId);
        uint256 proven = correct * ACCURACY_SCALE / rows;
        if (accuracyAfter != proven) revert ProvenAccuracyMismatch(accuracyAfter, proven);

        // the commitment the checkpoint opened from: the model's, which nothing moves while it is open
        _provenWeights[checkpointId] = ProvenWeights(terms.weightsCommitment, proof.weightsCommitment);
        emit CheckpointProven(checkpointId, proof.weightsCommitment, correct, rows);
    }

    /// @dev Every chunk's proof, verified with instances (X_k, Y_k, W, correct_k, rows_k) in the circuit's order;
    ///      answers the sums of correct and rows.
    function _verifyChunks(uint256 checkpointId, VerifiedTerms storage terms, AccuracyProof calldata proof)
        private
        view
        returns (uint256 correct, uint256 rows)
    {
        uint256 chunks = proof.proofs.length;
        if (
            chunks == 0 || proof.chunkCommitments.length != 2 * chunks || proof.correct.length != chunks
                || proof.rows.length != chunks
        ) revert LengthMismatch();
        if (keccak256(abi.encodePacked(proof.chunkCommitments)) != terms.testSetZkRoot) {
            revert TestSetCommitmentMismatch();
        }
        bytes32 vkaDigest = terms.vkaDigest;
        if (keccak256(abi.encodePacked(proof.vka)) != vkaDigest) revert VkaMismatch();
        address verifier = terms.verifier;
        uint256[] memory instances = new uint256[](5);
        instances[2] = proof.weightsCommitment;
        for (uint256 k = 0; k < chunks; ++k) {
            instances[0] = proof.chunkCommitments[2 * k];
            instances[1] = proof.chunkCommitments[2 * k + 1];
            instances[3] = proof.correct[k];
            instances[4] = proof.rows[k];
            if (!_verifies(verifier, vkaDigest, proof.proofs[k], instances, proof.vka)) {
                revert ProofRefused(checkpointId, k);
            }
            correct += proof.correct[k];
            rows += proof.rows[k];
        }
    }

    /// @dev One verifyProof by staticcall, reading only (success, digest) of the answer (the interface says why).
    ///      A revert (ezkl's answer to a proof for other instances) or false is a refusal; another digest means
    ///      the verifier checked another key. The call's memory (proof and VKA copies) is released after it, so
    ///      K chunks cost K times one chunk's memory, not a quadratic expansion.
    function _verifies(
        address verifier,
        bytes32 vkaDigest,
        bytes calldata chunkProof,
        uint256[] memory instances,
        bytes32[] calldata vka
    ) private view returns (bool) {
        uint256 freeMemory;
        assembly ("memory-safe") {
            freeMemory := mload(0x40)
        }
        (bool ok, bytes memory answer) =
            verifier.staticcall(abi.encodeCall(IHalo2VerifierReusable.verifyProof, (chunkProof, instances, vka)));
        bool verified = false;
        if (ok && answer.length >= 64) {
            (uint256 success, bytes32 digest) = abi.decode(answer, (uint256, bytes32));
            if (digest != vkaDigest) revert VkaMismatch();
            verified = success == 1;
        }
        assembly ("memory-safe") {
            mstore(0x40, freeMemory)
        }
        return verified;
    }

    /// @dev A model's hosting node and mode flag in one storage read: ModelRecord packs them into its second
    ///      slot (hostingNode in the low 160 bits, verified in the byte above), which the hosting-node check reads
    ///      anyway; reading the fields one by one would read the slot twice. The verified-mode tests fail if the
    ///      record's layout ever moves them.
    function _hostAndMode(ModelRecord storage model) private view returns (address hostingNode, bool verified) {
        uint256 word;
        assembly ("memory-safe") {
            word := sload(add(model.slot, 1))
        }
        hostingNode = address(uint160(word));
        verified = uint8(word >> 160) != 0;
    }

    function _knownCheckpoint(uint256 checkpointId) private view returns (Checkpoint storage checkpoint) {
        checkpoint = _checkpoints[checkpointId];
        if (checkpoint.state == CheckpointState.None) revert UnknownCheckpoint(checkpointId);
    }

    function _hostedCheckpoint(uint256 checkpointId) private view returns (Checkpoint storage checkpoint) {
        checkpoint = _knownCheckpoint(checkpointId);
        if (_models[checkpoint.modelId].hostingNode != msg.sender) {
            revert NotHostingNode(checkpoint.modelId, msg.sender);
        }
    }
}
