"""pretrainlab: compare language-model pretraining objectives on one shared encoder."""

__version__ = "0.1.0"
