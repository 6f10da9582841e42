"""Every ``pretrainlab …`` command in the docs' code blocks still parses.

The commands are collected from the fenced shell blocks (```` ```bash ```` or a bare
```` ``` ````) of README.md and experiments/*/README.md, one test per command with the id
``FILE:LINE``. Placeholders (``RUN``, ``STUDY_DIR``, ``PART``, …) are replaced by the values in
``PLACEHOLDERS`` below. Nothing is trained or probed:

- ``pretrain``, ``probe``, ``study`` (Hydra apps) run in this process through
  ``pretrainlab.cli.main`` with ``--cfg all --resolve`` appended (``--cfg job`` plus the
  ``hydra`` node, so launcher and sweeper overrides are checked too). Hydra composes and prints
  the config and returns without calling the task, so data under ``data_root`` is not read.
  The printed YAML must hold the job's config, and every override of the command must show in
  it (a config group choice in ``hydra.runtime.choices``, a value at its key).
  A multirun (``-m``) cannot be combined with ``--cfg``: its sweeps are expanded here and every
  job of the sweep is composed the same way.
- ``reproduce`` (argparse) parses its command line with its own parser; the re-run itself is
  replaced by a check that the substituted run directory is a finished run it could re-run.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted(REPO.glob("experiments/*/README.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}  # ```json, ```yaml, ... are not commands
HYDRA_COMMANDS = {"pretrain", "probe", "study"}
SUBCOMMANDS = HYDRA_COMMANDS | {"reproduce", "power", "status"}
SHOWS_ONLY = {"--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i"}  # run as documented

# The placeholders the docs write, in the order they are applied, and what each stands for.
# The right-hand side names a value from `placeholder_values`. An ellipsis (`…`, `...`) that
# no pattern here consumes fails the test: add the documented form, with what it stands for.
PLACEHOLDERS: list[tuple[str, str]] = [
    (r"outputs/pretrain/(?:…|\.\.\.)/RUN", "mlm_run"),  # "some pretraining run directory"
    (r"\bMLM_RUN\b", "mlm_run"),
    (r"\bCLM_RUN\b", "clm_run"),
    (r"\bRUN_DIR\b", "mlm_run"),
    (r"\bRUN\b", "mlm_run"),  # checkpoint=RUN, scratch_from=RUN, reproduce RUN, RUN/...
    (r"\bSTUDY_DIR\b", "study_dir"),  # a study directory (study.dir=STUDY_DIR)
    (r"\bPART\b", "partition"),  # a SLURM partition (hydra.launcher.partition=PART)
]
UNRESOLVED = re.compile(r"…|\.\.\.")  # an ellipsis no entry above accounted for


@dataclass(frozen=True)
class DocCommand:
    file: str  # relative to the repository
    line: int  # of the command's first line
    text: str  # as documented, continuation lines joined
    env: tuple[tuple[str, str], ...]  # leading VAR=value assignments
    argv: tuple[str, ...]  # after `pretrainlab`: the subcommand and its arguments
    syntax_error: str = ""  # why the shell could not split the line, if it could not

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for each line inside a shell code block, `\\` continuations joined."""
    fence: str | None = None  # the open block's fence (``` or ~~~), None outside blocks
    shell = False
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        marker = re.fullmatch(r"\s*(```+|~~~+)\s*([\w+-]*).*", raw)
        if fence is None:
            if marker:
                fence, shell = marker.group(1), marker.group(2).lower() in SHELL_FENCES
            continue
        if marker and marker.group(1).startswith(fence) and not marker.group(2):
            fence, pending = None, None
            continue
        if not shell:
            continue
        start, so_far = pending if pending else (number, "")
        if raw.rstrip().endswith("\\"):
            pending = (start, so_far + raw.rstrip()[:-1] + " ")
            continue
        pending = None
        yield start, so_far + raw


def _words(line: str) -> list[str]:
    """Shell words of one line: quotes removed, `# comment` dropped, operators as own words."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


# A line that runs pretrainlab: optional VAR=value words, then `[path/]pretrainlab` or
# `python -m pretrainlab`. Other lines of a bare ``` block (diagrams, trees) are not shell.
RUNS_PRETRAINLAB = re.compile(
    r"(?:[A-Za-z_]\w*=\S*\s+)*(?:\S*/)?(?:pretrainlab|python[\d.]*\s+-m\s+pretrainlab)(?:\s|$)"
)
OPERATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "(", ")"}


def parse_command(line: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], str] | None:
    """(env, argv after `pretrainlab`, shell syntax error or "") if the line runs pretrainlab."""
    line = re.sub(r"^\s*\$\s+", "", line).strip()  # a shell prompt
    if not RUNS_PRETRAINLAB.match(line):
        return None
    try:
        words = _words(line)
    except ValueError as err:  # e.g. an unbalanced quote: the shell would not run it either
        return (), (), f"not valid shell: {err}"
    env = []
    while re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
        key, value = words.pop(0).split("=", 1)
        env.append((key, value))
    rest = words[1:] if Path(words[0]).name == "pretrainlab" else words[3:]  # python -m ...
    if len(rest) >= 3 and rest[0] in SUBCOMMANDS and rest[1] == "|" and rest[2] in SUBCOMMANDS:
        return None  # a synopsis (`pretrainlab pretrain | probe | ...`), not a command
    end = next((i for i, w in enumerate(rest) if w in OPERATORS), len(rest))
    return tuple(env), tuple(rest[:end]), ""


def collect_commands(files: list[Path] = DOC_FILES) -> list[DocCommand]:
    commands = []
    for path in files:
        for number, line in _logical_lines(path.read_text(encoding="utf-8")):
            parsed = parse_command(line)
            if parsed is not None:
                rel = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
                commands.append(DocCommand(rel, number, " ".join(line.split()), *parsed))
    return commands


COMMANDS = collect_commands()


# ---------------------------------------------------------------------------------------------
# The collector itself


def test_collector_reads_shell_blocks_only(tmp_path: Path) -> None:
    doc = tmp_path / "DOC.md"
    doc.write_text(
        "Prose: `pretrainlab pretrain not=collected`\n"  # 1
        "```bash\n"  # 2
        "pretrainlab pretrain objective=clm   # a comment\n"  # 3
        "$ pretrainlab study experiment=x \\\n"  # 4
        '    \'study.pretrain_overrides=["a=1","b#2"]\'   # quoted, continued\n'  # 5
        "make compare   # = pretrainlab study experiment=y\n"  # 6
        "HYDRA_FULL_ERROR=1 pretrainlab probe checkpoint=RUN | tail -1\n"  # 7
        "```\n"  # 8
        "```json\n"  # 9
        "pretrainlab probe in=json\n"  # 10
        "```\n"  # 11
        "```\n"  # 12
        "pretrainlab pretrain | probe | study   ->  a diagram\n"  # 13
        "pretrainlab reproduce RUN --rtol 0.01\n"  # 14
        "```\n",  # 15
        encoding="utf-8",
    )
    got = [(c.line, c.env, c.argv) for c in collect_commands([doc])]
    assert got == [
        (3, (), ("pretrain", "objective=clm")),
        (4, (), ("study", "experiment=x", 'study.pretrain_overrides=["a=1","b#2"]')),
        (7, (("HYDRA_FULL_ERROR", "1"),), ("probe", "checkpoint=RUN")),
        (14, (), ("reproduce", "RUN", "--rtol", "0.01")),
    ]


def test_docs_have_commands() -> None:
    files = {c.file for c in COMMANDS}
    assert "README.md" in files
    assert {c.argv[0] for c in COMMANDS if c.file == "README.md"} >= SUBCOMMANDS
    assert len(COMMANDS) >= 10, [c.id for c in COMMANDS]


def test_documented_make_targets_exist() -> None:
    """`make TARGET` lines in the same code blocks name targets of the Makefile."""
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    bad = []
    for path in DOC_FILES:
        for number, line in _logical_lines(path.read_text(encoding="utf-8")):
            line = re.sub(r"^\s*\$\s+", "", line)
            if re.match(r"make(\s|$)", line):
                named = [w for w in _words(line)[1:] if re.fullmatch(r"[\w-]+", w)]
                bad += [
                    f"{path.relative_to(REPO)}:{number}: make {t}"
                    for t in named
                    if t not in targets
                ]
    assert not bad, f"no such Makefile target: {bad}"


# ---------------------------------------------------------------------------------------------
# Running the documented commands


@pytest.fixture
def placeholder_values(request: pytest.FixtureRequest, tmp_path: Path):
    """``values(name)``: what a placeholder stands for; the tiny runs are trained on first use."""

    def value(name: str) -> str:
        if name in ("mlm_run", "clm_run"):
            return str(request.getfixturevalue("pretrained")[name.split("_")[0]])
        return {"study_dir": str(tmp_path / "study"), "partition": "debug"}[name]

    return value


def substitute(argv: tuple[str, ...], value) -> list[str]:
    out = []
    for word in argv:
        for pattern, name in PLACEHOLDERS:
            if re.search(pattern, word):
                word = re.sub(pattern, lambda _m, n=name: value(n), word)
        out.append(word)
    return out


@dataclass
class Outcome:
    code: int | str | None
    stdout: str
    stderr: str
    error: BaseException | None


def run_in_process(argv: list[str]) -> Outcome:
    """``pretrainlab ARGV`` in this process: stdout/stderr captured, exit status returned."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from pretrainlab import cli

    GlobalHydra.instance().clear()  # a test that left Hydra initialised must not leak in
    hydra_cfg = HydraConfig.instance().cfg  # --cfg sets it; later tests must not see ours
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    error = None
    saved = sys.argv
    sys.argv = ["pretrainlab", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - reported in the assertion
        code, error = "exception", exc
    finally:
        sys.argv = saved
        HydraConfig.instance().cfg = hydra_cfg
    assert not GlobalHydra.instance().is_initialized(), "Hydra left GlobalHydra initialised"
    return Outcome(code, out.getvalue(), err.getvalue(), error)


def _failure(cmd: DocCommand, argv: list[str], outcome: Outcome, why: str) -> str:
    tail = "\n".join((outcome.stderr or outcome.stdout).strip().splitlines()[-15:])
    error = f"\n{type(outcome.error).__name__}: {outcome.error}" if outcome.error else ""
    return (
        f"{cmd.id}: documented command `pretrainlab {' '.join(cmd.argv)}` {why}\n"
        f"ran: pretrainlab {shlex.join(argv)}\nexit status: {outcome.code}{error}\n{tail}"
    )


def _sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs of a basic-sweeper multirun: the product of every sweep's values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    choices = []
    for o in OverridesParser.create().parse_overrides(overrides):
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ValueError(f"{o.input_line} is not a list or range of values")
            key = o.get_key_element()
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    return [list(job) for job in itertools.product(*choices)]


def _check_reflected(cfg: dict, overrides: list[str]) -> list[str]:
    """Each override shows in the composed config: a group's choice, or the value at its key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    conf = OmegaConf.create(cfg)
    chosen = cfg["hydra"]["runtime"]["choices"]
    problems = []
    for o in OverridesParser.create().parse_overrides(overrides):
        want = o.value()
        if o.key_or_group in chosen:
            if not o.is_delete() and chosen[o.key_or_group] != want:
                problems.append(f"{o.input_line}: {o.key_or_group} is {chosen[o.key_or_group]!r}")
            continue
        have = OmegaConf.select(conf, o.key_or_group, default="<absent>")
        if o.is_delete():
            if have != "<absent>":
                problems.append(f"{o.input_line}: {o.key_or_group} is still {have!r}")
        elif isinstance(want, str) and "${" in want:
            continue  # an interpolation: printed resolved
        else:
            if OmegaConf.is_config(have):
                have = OmegaConf.to_container(have)
            if have != want:
                problems.append(f"{o.input_line}: {o.key_or_group} is {have!r}")
    return problems


def check_hydra_command(cmd: DocCommand, argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if SHOWS_ONLY & set(args):  # documented as a help / --cfg command: run it as it is
        outcome = run_in_process(argv)
        assert outcome.code in (0, None) and outcome.stdout.strip(), _failure(
            cmd, argv, outcome, "fails"
        )
        return
    multirun = "-m" in args or "--multirun" in args
    args = [a for a in args if a not in ("-m", "--multirun")]
    assert all(not a.startswith("-") for a in args), (
        f"{cmd.id}: flags this test does not know how to check: {[a for a in args if a[0] == '-']}"
    )
    try:
        jobs = _sweep_jobs(args) if multirun else [args]
    except Exception as err:  # noqa: BLE001 - e.g. an interval() sweep: only a sweeper can
        raise AssertionError(f"{cmd.id}: cannot expand the sweep of `{cmd.text}`: {err}") from err
    for job in jobs:
        run = [command, *job, "--cfg", "all", "--resolve"]
        outcome = run_in_process(run)
        assert outcome.code in (0, None), _failure(cmd, run, outcome, "does not parse")
        cfg = yaml.safe_load(outcome.stdout)
        assert isinstance(cfg, dict) and "hydra" in cfg, _failure(
            cmd, run, outcome, "printed no config"
        )
        job_cfg = {k: v for k, v in cfg.items() if k != "hydra"}
        assert job_cfg, _failure(cmd, run, outcome, "printed an empty job config")
        problems = _check_reflected(cfg, job)
        assert not problems, _failure(
            cmd, run, outcome, "composes, but its overrides do not show:\n" + "\n".join(problems)
        )


def check_reproduce(cmd: DocCommand, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Its own argparse parser reads the line; instead of re-running, the run folder is checked
    to be a finished run that `reproduce` can read (its metrics and its config.yaml)."""
    from pretrainlab.study import reproduce as mod

    seen = []

    def dry_reproduce(run: Path, rtol: float, atol: float) -> tuple[list[dict], list[str]]:
        mod._flat(run)  # raises (exit 2) when run is not a finished run directory
        if not (run / "config.yaml").is_file():
            raise AssertionError(f"{run} has no config.yaml")
        seen.append((run, rtol, atol))
        return [], []

    monkeypatch.setattr(mod, "reproduce", dry_reproduce)
    outcome = run_in_process(argv)
    assert outcome.code in (0, None) and len(seen) == 1, _failure(cmd, argv, outcome, "fails")


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.id for c in COMMANDS])
def test_documented_command_parses(
    cmd: DocCommand, placeholder_values, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not cmd.syntax_error, f"{cmd.id}: `{cmd.text}`: {cmd.syntax_error}"
    argv = substitute(cmd.argv, placeholder_values)
    left = [w for w in argv if UNRESOLVED.search(w)]
    assert not left, f"{cmd.id}: placeholder(s) not in PLACEHOLDERS: {left}"
    for key, value in cmd.env:
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # the exception itself, not Hydra's summary
    monkeypatch.chdir(REPO)  # the docs run commands from the repository root
    if not argv or argv[0] in ("-h", "--help"):
        outcome = run_in_process(argv)
        assert outcome.code in (0, None) and "usage:" in outcome.stdout, _failure(
            cmd, argv, outcome, "prints no usage"
        )
        return
    assert argv[0] in SUBCOMMANDS, (
        f"{cmd.id}: `pretrainlab {' '.join(cmd.argv)}`: no such command "
        f"(expected one of {sorted(SUBCOMMANDS)})"
    )
    if argv[0] == "reproduce":
        check_reproduce(cmd, argv, monkeypatch)
    elif argv[0] == "power":  # its own argparse parser; the study it names may not exist here
        from pretrainlab.study.power import parser

        args = parser().parse_args(argv[1:])
        assert args.effect > 0, f"{cmd.id}: `{cmd.text}`: --effect must be positive"
    elif argv[0] == "status":  # argparse too; the study it names may not exist here
        from pretrainlab.study.status import parser as status_parser

        status_parser().parse_args(argv[1:])
    else:
        check_hydra_command(cmd, argv)


# ---------------------------------------------------------------------------------------------
# The checks can fail


def test_a_broken_command_fails_with_its_place(tmp_path: Path) -> None:
    typo = DocCommand(
        "DOC.md",
        7,
        "pretrainlab pretrain trainer.max_step=10",
        (),
        ("pretrain", "trainer.max_step=10"),
    )
    with pytest.raises(AssertionError, match=r"DOC\.md:7: .*does not parse(?s:.*)max_step"):
        check_hydra_command(typo, list(typo.argv))
    sweep = ("pretrain", "-m", "objective=mlm,nope")
    with pytest.raises(AssertionError, match=r"DOC\.md:8: .*nope"):
        check_hydra_command(DocCommand("DOC.md", 8, "", (), sweep), list(sweep))


def test_reproduce_needs_a_finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    argv = ["reproduce", str(tmp_path), "--rtol", "0.01"]
    with pytest.raises(AssertionError, match=r"(?s)DOC\.md:9: .*neither metrics\.json"):
        check_reproduce(DocCommand("DOC.md", 9, "", (), tuple(argv)), argv, monkeypatch)
    argv = ["reproduce", str(tmp_path), "--rtol"]
    with pytest.raises(AssertionError, match=r"exit status: 2(?s:.*)--rtol: expected one argument"):
        check_reproduce(DocCommand("DOC.md", 9, "", (), tuple(argv)), argv, monkeypatch)


def test_an_override_that_does_not_show_is_reported() -> None:
    cfg = {"hydra": {"runtime": {"choices": {"objective": "mlm"}}}, "seed": 0, "optim": {"lr": 1}}
    problems = _check_reflected(cfg, ["objective=clm", "seed=1", "optim.lr=1", "~optim"])
    assert problems == [
        "objective=clm: objective is 'mlm'",
        "seed=1: seed is 0",
        "~optim: optim is still {'lr': 1}",
    ]
