"""The hosting node: buys rows, trains groups behind backup points, bills, settles and anchors."""
