"""Pretraining objectives: one LightningModule each, differing only in collation, attention
mask, head and loss. Shared machinery lives in :mod:`pretrainlab.objectives.base`."""
