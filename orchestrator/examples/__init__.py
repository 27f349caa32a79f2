"""Worked-example inputs from datasets scikit-learn ships: what an owner and its data sources would bring to
SplitLedger (docs/tutorial.md). Nothing here is downloaded."""
