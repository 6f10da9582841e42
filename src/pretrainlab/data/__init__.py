"""Corpora, tokenizers, packed blocks / sentence pairs, and labelled probe tasks."""
