"""User-facing errors.

A :class:`PretrainlabError` is raised for bad input (config values, data files, checkpoints)
*before* expensive work starts. Its message is one paragraph that names the bad value and
what would be accepted; the CLI prints it without a traceback (unless HYDRA_FULL_ERROR=1)
and exits with status 2.
"""


class PretrainlabError(Exception):
    """Bad input from the user: the message says what was wrong and what is accepted."""
