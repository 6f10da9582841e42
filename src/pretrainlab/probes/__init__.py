"""Downstream probes of pretrained encoders."""
