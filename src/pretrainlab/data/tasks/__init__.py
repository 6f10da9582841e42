"""Labelled downstream tasks for the probes: embedded (generated) and real (local files)."""
