"""Keep secrets given on the command line out of every file a run writes.

Credentials belong in the environment (``WANDB_API_KEY``, ``HF_TOKEN``) or ``~/.netrc``, and
no pretrainlab code reads a secret from the config. Still, an override such as
``+logger.api_key=...`` or ``+hydra.job.env_set.HF_TOKEN=...`` would otherwise be copied into
run.json's argv, config.yaml, Hydra's ``.hydra/*.yaml`` and ``multirun.yaml``, a study's
plan.json and the W&B run config. Everything that writes one of those passes it through here
first; a secret's value becomes ``<redacted>`` (``'<redacted>'`` inside an override, which
then still parses: a study's jobs compose the overrides of its plan).

Which keys hold a secret (:func:`is_secret_key`, on the last part of a dotted key; the test
lists both kinds):

- a word (``_``, ``-``, camelCase split) ``secret``, ``password``, ``passwd``, ``passphrase``,
  ``credential(s)`` anywhere: ``client_secret``, ``db_password``, ``aws_secret_access_key``;
- a last word ``key``, ``token`` or ``auth``, or a compound such as ``apikey``/``authtoken``:
  ``key``, ``api_key``, ``apiKey``, ``hf_token``, ``access_token``, ``sort_key`` too (none of
  our configs has a key named like that, and over-redacting a harmless value costs nothing);
- an environment-variable name ``WANDB_*`` (``hydra.job.env_set.WANDB_MODE`` included);
- anything under a W&B settings node: ``logger.settings.*``, ``wandb_settings.*``.

Kept: ``tokenizer``, ``tokenizer_docs``, ``max_tokens``, ``num_tokens``, ``exclude_keys``,
``keys``, ``monkey``, ``pad_token``/``mask_token``/... (a tokenizer's special tokens),
``pad_token_id``, ``wandb_project``, ``wandb_mode``.

Besides the keyed values, a secret's value (8+ characters that look like one) is replaced
wherever else it shows up in the same config or command line: an interpolation that copied
it, Hydra's ``override_dirname``, a folder named after it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"
QUOTED = f"'{REDACTED}'"  # in an override: still one Hydra parses (a study job composes it)

_ANY_WORD = {"secret", "secrets", "password", "passwd", "passphrase", "credential", "credentials"}
_LAST_WORD = {"key", "token", "auth"}
_COMPOUND = ("apikey", "accesskey", "secretkey", "privatekey", "authkey", "token")
_SPECIAL_TOKENS = {"pad", "mask", "cls", "sep", "bos", "eos", "unk"}  # tokenizer vocabulary
_SETTINGS_PARENTS = {"logger", "wandb"}

# one ``key=value`` override at the start of a string or after a comma (Hydra's
# override_dirname joins them with commas); the value runs to the next ``,key=`` or the end
_KEY = r"[A-Za-z0-9_.\-/@$\[\]]+"
_OVERRIDE = re.compile(rf"(^|,)([~+]*)({_KEY})=((?:(?!,[~+]*{_KEY}=).)*)", re.DOTALL)
# an override quoted inside another one's list value: study.pretrain_overrides=["+k=v",...]
_NESTED = re.compile(rf"([\"'])([~+]*)({_KEY})=((?:(?!\1).)*)\1", re.DOTALL)


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_secret_key(name: str) -> bool:
    """Whether a config key (one part of a dotted key) names a secret: see the module doc."""
    name = str(name)
    if name.startswith("WANDB_") and name.upper() == name:
        return True
    words = _words(name)
    if not words:
        return False
    if _ANY_WORD.intersection(words):
        return True
    last = words[-1]
    if last == "token" and len(words) > 1 and words[-2] in _SPECIAL_TOKENS:
        return False  # pad_token, mask_token: a tokenizer's special tokens, not credentials
    return last in _LAST_WORD or last.endswith(_COMPOUND)


def is_secret_path(path: Sequence[str]) -> bool:
    """Whether a dotted key (as its parts) holds a secret: its last part names one, or it sits
    under one that does or under a W&B settings node."""
    parts = [str(p) for p in path]
    for i, part in enumerate(parts):
        if is_secret_key(part) or part.lower() == "wandb_settings":
            return True
        if part.lower() == "settings" and i and parts[i - 1].lower() in _SETTINGS_PARENTS:
            return True
    return False


def _key_path(key: str) -> list[str]:
    return [p for p in re.split(r"[./@]", key) if p]


def _looks_secret(value: str) -> bool:
    """Long and unusual enough to replace wherever it appears (``offline`` is not)."""
    return value not in (REDACTED, QUOTED) and (
        len(value) >= 16 or (len(value) >= 8 and not value.isalpha())
    )


def _override_secrets(text: str) -> Iterable[str]:
    for pattern in (_OVERRIDE, _NESTED):
        for m in pattern.finditer(text):
            if is_secret_path(_key_path(m.group(3))):
                value = m.group(4)
                yield value
                yield value.strip("'\"")


def _redact_text(text: str, values: Iterable[str]) -> str:
    def one(m: re.Match) -> str:
        if not m.group(4) or not is_secret_path(_key_path(m.group(3))):
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{m.group(3)}={QUOTED}"

    def nested(m: re.Match) -> str:
        if not is_secret_path(_key_path(m.group(3))):
            return m.group(0)
        inner = f'"{REDACTED}"' if m.group(1) == "'" else QUOTED  # the other kind of quote
        return f"{m.group(1)}{m.group(2)}{m.group(3)}={inner}{m.group(1)}"

    text = _NESTED.sub(nested, _OVERRIDE.sub(one, text))
    for value in values:
        text = text.replace(value, REDACTED)
    return text


def _by_length(values: Iterable[str]) -> list[str]:
    """Secret values to replace in running text, longest first (a secret holding another)."""
    return sorted({v for v in values if _looks_secret(v)}, key=len, reverse=True)


def redact_override(text: str) -> str:
    """One override (``k=v``, ``+k=v``, ``++k=v``, ``~k=v``, a sweep ``k=a,b``) with a secret
    value replaced; anything else unchanged."""
    return _redact_text(text, _by_length(_override_secrets(text)))


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with every secret override's value replaced (``~k`` has none)."""
    argv = [str(a) for a in argv]
    values = _by_length(v for a in argv for v in _override_secrets(a))
    return [_redact_text(a, values) for a in argv]


def _plain(cfg: Any, resolve: bool) -> Any:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=resolve)
    return cfg


def _collect(node: Any, path: list[str], out: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if is_secret_path([*path, str(k)]):
                _leaves(v, out)
            else:
                _collect(v, [*path, str(k)], out)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _collect(v, path, out)
    elif isinstance(node, str):
        out.extend(_override_secrets(node))


def _leaves(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for v in node.values():
            _leaves(v, out)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _leaves(v, out)
    elif node is not None and not isinstance(node, bool):
        out.append(str(node))


def _replace(node: Any, path: list[str], values: list[str]) -> Any:
    if isinstance(node, dict):
        return {
            k: REDACTED
            if is_secret_path([*path, str(k)]) and v is not None
            else _replace(v, [*path, str(k)], values)
            for k, v in node.items()
        }
    if isinstance(node, (list, tuple)):
        return [_replace(v, path, values) for v in node]
    if isinstance(node, str):
        return _redact_text(node, values)
    return node


def redact_config(cfg: Any, resolve: bool = True) -> Any:
    """A copy of ``cfg`` (DictConfig, ListConfig or plain dict/list) with every secret value
    replaced by ``<redacted>``: values of secret keys (a whole node under one), secret
    overrides inside strings (``study.pretrain_overrides``, Hydra's ``overrides.task``) and
    those values wherever else they appear. A DictConfig comes back as a DictConfig
    (``resolve``: interpolations resolved first, as in the config.yaml a run writes)."""
    from omegaconf import OmegaConf

    plain = _plain(cfg, resolve)
    found: list[str] = []
    _collect(plain, [], found)
    out = _replace(plain, [], _by_length(found))
    return OmegaConf.create(out) if OmegaConf.is_config(cfg) else out


def redacted_yaml(cfg: Any) -> str:
    """``OmegaConf.to_yaml(cfg, resolve=True)`` with secrets redacted: the config.yaml text of
    a run (the same for the same config, so a resume compares it as before)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(redact_config(cfg, resolve=True))


def redact_hydra_run() -> None:
    """Called first thing in each command's Hydra task function: by then Hydra has parsed the
    command line and written its files, so redact both.

    Hydra 1.3 has no way to keep a value out of ``.hydra/{config,hydra,overrides}.yaml`` or
    ``multirun.yaml`` (only ``hydra.output_subdir=null``, which drops the files and with them
    the record of how a run was launched; and ``multirun.yaml`` is written regardless). So
    they are rewritten here, atomically, when they hold a secret: the unredacted copy lived
    for the moments between Hydra's write and this call. ``sys.argv`` is redacted in place
    too: W&B records ``sys.argv`` in its run metadata, and nothing reads the command line
    again once Hydra has parsed it (the process's own /proc cmdline keeps it, like any
    command line)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    sys.argv[:] = redact_argv(sys.argv)
    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    files = []
    if hc.output_subdir is not None:
        folder = Path(hc.runtime.output_dir) / str(hc.output_subdir)
        files += [folder / n for n in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    if hc.mode == RunMode.MULTIRUN:
        files.append(Path(hc.sweep.dir) / "multirun.yaml")
    for path in files:
        redact_yaml_file(path)


def redact_yaml_file(path: Path) -> bool:
    """Rewrite a YAML file (a Hydra-written config, interpolations kept as written) with its
    secrets redacted; untouched when it holds none. Whether it was rewritten."""
    from omegaconf import OmegaConf

    from pretrainlab.io import atomic_write_text

    try:
        loaded = OmegaConf.load(path)
    except (OSError, ValueError):
        return False
    plain = OmegaConf.to_container(loaded, resolve=False)
    redacted = redact_config(plain)
    if redacted == plain:
        return False
    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(redacted)))
    return True
