"""Studies: expand an experiment into jobs, run them through Hydra launchers, aggregate over
seeds with confidence intervals, and report (CSV, Markdown, HTML, W&B)."""
