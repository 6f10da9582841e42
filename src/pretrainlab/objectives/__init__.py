"""Pretraining objectives: one LightningModule each, differing only in collation, attention
mask, head and loss. Shared machinery lives in :mod:`pretrainlab.objectives.base`."""

# The built-in objectives in the order tables and plots present them (and the colour each
# keeps in every plot); any other objective follows them A-Z.
DISPLAY_ORDER = (
    "mlm",
    "clm",
    "nsp",
    "mlm_nsp",
    "prefix_lm",
    "sop",
    "mlm_sop",
    "electra",
    "contrastive",
    "mlm_contrastive",
)
