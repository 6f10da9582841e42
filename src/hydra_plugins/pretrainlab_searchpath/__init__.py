"""Hydra search-path plugin: the config folders named by PRETRAINLAB_CONFIG_DIR join every
pretrainlab command's search path (and a study's jobs', which inherit the environment), after
pretrainlab's own configs. Hydra discovers it as a ``hydra_plugins`` namespace package, the
documented way to extend a packaged app's search path (Hydra docs, "Config Search Path")."""

from __future__ import annotations

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

ENV = "PRETRAINLAB_CONFIG_DIR"  # pretrainlab.cli.USER_CONF_ENV (not imported: plugins load early)


class PretrainlabSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for i, part in enumerate(p for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()):
            search_path.append(f"pretrainlab-user-{i}", f"file://{os.path.expanduser(part)}")
