"""The shared encoder (one transformers config for every objective) and its cost model."""
