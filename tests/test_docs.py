"""Every command block (```bash / ```sh / ```shell) of README.md, INSTALL.md and DATA.md runs here
as written, or says on a leading comment line ``# needs <what> (not run by the tests)``. Every
command, run or not, is also checked: the tool exists, takes the flags shown, and its configs load
with the overrides shown. A doc edit then cannot silently break a command.

How commands run: in one sandbox folder (``configs/`` and ``tools/`` linked in) where a tiny quick
start has run, so ``demo_data/motion`` and ``output/quickstart`` exist as after the real one;
``/data/...`` (DATA.md's example root) names a folder of small generated datasets in the layouts
DATA.md shows. ``python tools/X.py`` runs in this process, ``torchrun`` as written. The quick start
and the model benchmark get the shortening options the README says are fine (SHORTENED). ``pip``
lines are checked against setup.py and the installed versions; lines that CI runs verbatim
(.ci/run) count as run, and CI must run exactly the README's set-up commands."""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from unittest import mock

import pytest
import torch

from tests.conftest import REPO, checkout_environ
from tests.datasets.helpers import make_ssv1, make_ssv2
from vov3d.cli import run_net
from vov3d.cli.args import looks_like_key
from vov3d.cli.make_demo_dataset import main as make_demo
from vov3d.config import load_config
from vov3d.datasets import build_dataset
from vov3d.utils.run_layout import RunFolder

DOCS = ("README.md", "INSTALL.md", "DATA.md")
# Shown whole in INSTALL.md, each in its own block: tests/cli/test_slurm_script.py runs the files.
SLURM_SCRIPTS = sorted((REPO / "tools" / "slurm").glob("*.sbatch"))
FENCE = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"# needs .+ \(not run by the tests\)")
# What the README says a check may add to keep a run short, per tool (the docs must say it).
SHORTENED = {
    "tools/quickstart.py": ["SOLVER.MAX_EPOCH", "1"],
    "tools/benchmark.py": ["--frames", "4", "--crop", "32", "--repeats", "1"],
}
NOT_ON_A_CPU = {"tools/gpu_check.py"}  # its checks start with NUM_GPUS 1
DEMO_SIZES = ["--train-per-class", "4", "--val-per-class", "1", "--test-per-class", "1"]  # one 32-clip batch
FINE_TUNE_CLASSES = 5  # README's "Fine-tune on your own videos" example


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def marked(self) -> bool:
        """A marker among the leading comment lines (after a shebang or #SBATCH lines as well)."""
        for line in self.text.splitlines():
            if not line.startswith("#"):
                return False
            if MARKER.fullmatch(line.strip()):
                return True
        return False

    def commands(self) -> list[list[str]]:
        """Token lists: continuation lines joined, comments dropped, ``a && b`` split."""
        commands = []
        for line in self.text.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            while tokens:
                end = tokens.index("&&") if "&&" in tokens else len(tokens)
                commands.append(tokens[:end])
                tokens = tokens[end + 1 :]
        return commands


def doc_blocks() -> list[Block]:
    """The command blocks of DOCS; a copy of a SLURM script is the script's test's."""
    scripts = {path.read_text() for path in SLURM_SCRIPTS}
    blocks = []
    for doc in DOCS:
        text = (REPO / doc).read_text()
        for m in FENCE.finditer(text):
            if m.group(1) not in scripts:
                blocks.append(Block(doc, text.count("\n", 0, m.start()) + 1, m.group(1)))
    return blocks


BLOCKS = doc_blocks()


def ci_commands() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith(("#", "set ", "cd ", "export "))]


def run_by_ci(block: Block) -> bool:
    lines = [line for line in block.text.splitlines() if line.strip() and not line.startswith("#")]
    return all(line in ci_commands() for line in lines)


def test_ci_runs_the_readme_set_up_commands_verbatim() -> None:
    readme = (REPO / "README.md").read_text().splitlines()
    commands = ci_commands()
    assert len(commands) == 2, commands
    for command in commands:
        assert command in readme, f"{command!r} is in .ci/run but not, verbatim, in README.md"
    assert "pytest" in commands[-1]


def test_ci_marks_itself_as_ci() -> None:
    """With CI=true, tests whose ../shared material is missing fail instead of skipping."""
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert any(line.startswith("export CI=true") for line in lines)


def test_readme_output_folders_are_the_ones_runs_use() -> None:
    readme = (REPO / "README.md").read_text()
    examples = re.findall(r"`--cfg (configs/\S+\.yaml)` writes to\s+`(output/\S+)/`", readme)
    assert examples, "README no longer shows where a config writes"
    for config, folder in examples:
        assert load_config([str(REPO / config)]).OUTPUT_DIR == folder, config
    quickstart = load_config([str(REPO / "configs" / "quickstart" / "vov3d_motion.yaml")]).OUTPUT_DIR
    assert f"(`{os.path.normpath(quickstart)}/`)" in readme


def program(tokens: list[str]) -> tuple[str, list[str]]:
    """(kind, argv): kind is ``pip``, ``pytest``, ``tools/X.py`` / ``tools/X.sh``, or the unknown
    program; launchers (``VAR=value``, srun, torchrun and its flags) and the interpreter dropped."""
    tokens = [t for t in tokens if not re.fullmatch(r"[A-Z_]+=\S*", t)]
    if tokens[:1] == ["srun"]:
        tokens = tokens[1:]
    if tokens[:1] == ["torchrun"]:
        tokens = tokens[next(i for i, t in enumerate(tokens) if t.endswith(".py")) :]
    if tokens and tokens[0] in ("python", "python3"):
        tokens = tokens[1:]
    if tokens[:2] == ["-m", "pip"] or tokens[:1] == ["pip"]:
        return "pip", tokens[tokens.index("install") + 1 :]
    if tokens[:2] == ["-m", "pytest"]:
        return "pytest", tokens[2:]
    if tokens and re.fullmatch(r"tools/\w+\.(py|sh)", tokens[0]):
        return tokens[0], tokens[1:]
    return " ".join(tokens[:1]), tokens[1:]


def split_configs(argv: list[str]) -> tuple[list[str], list[str]]:
    """The files after ``--cfg`` / ``--configs`` and the ``KEY VALUE`` overrides."""
    files, opts, taking = [], [], False
    for i, token in enumerate(argv):
        if token == "--opts" or looks_like_key(token):
            opts = [t for t in argv[i:] if t != "--opts"]
            break
        if token.startswith("-"):
            taking = token in ("--cfg", "--configs")
        elif taking:
            files.append(token)
    return files, opts


def help_text(tool: str, argv: list[str]) -> str:
    """``--help`` of the tool (and of its sub-command, e.g. ``benchmark.py model``), in-process."""
    module = importlib.import_module(f"vov3d.cli.{Path(tool).stem}")
    calls = [["--help"]] + ([[argv[0], "--help"]] if argv and not argv[0].startswith("-") else [])
    out = io.StringIO()
    for call in calls:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            module.main(call)
    return out.getvalue()


def check_statically(kind: str, argv: list[str], where: str) -> None:
    if kind == "pip":
        check_pip(argv, where)
    elif kind == "pytest":
        pass  # this suite
    elif kind.startswith("tools/"):
        assert (REPO / kind).is_file(), f"{where}: {kind} does not exist"
        if kind.endswith(".py"):
            check_tool(kind, argv, where)
    else:
        pytest.fail(f"{where}: {kind!r} is neither a tool, pip nor pytest: teach tests/test_docs.py to check it")


def check_tool(tool: str, argv: list[str], where: str) -> None:
    if tool == "tools/run_net.py":  # the real parser and config loading, overrides included
        run_net.setup_cfg(run_net.parse_args(argv))
        return
    text = help_text(tool, argv)
    for flag in (t for t in argv if t.startswith("--") and t != "--opts"):
        assert re.search(rf"{re.escape(flag)}\b", text), f"{where}: {tool} takes no {flag}"
    files, opts = split_configs(argv)
    if any(Path(file).parts[0] == "output" for file in files):
        return  # the config a run before it saved (OUTPUT_DIR/config.yaml): the run's check covers it
    for file in files:
        assert (REPO / file).is_file(), f"{where}: {file} does not exist"
    if "--cfg" in argv:
        load_config([str(REPO / f) for f in files], opts)


def check_pip(argv: list[str], where: str) -> None:
    """Pinned versions are the installed ones; the extras named exist in setup.py."""
    setup = (REPO / "setup.py").read_text()
    for token in (t for t in argv if not t.startswith("-")):
        if "==" in token:
            name, version = token.split("==")
            assert metadata.version(name).split("+")[0] == version, f"{where}: {token} is not what we test with"
        elif token.startswith(".["):
            for extra in token[2:-1].split(","):
                assert f'"{extra}": [' in setup, f"{where}: no extra [{extra}] in setup.py's extras_require"


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_block_is_marked_or_runs(block: Block) -> None:
    """A block nobody runs must say why: a new block fails here until it runs or is marked."""
    if block.marked or run_by_ci(block):
        return
    for tokens in block.commands():
        kind, _ = program(tokens)
        assert kind in ("pip", "pytest") or kind.endswith(".py") and kind not in NOT_ON_A_CPU, (
            f"{block}: {' '.join(tokens)!r} cannot run in the tests: run it in tests/test_docs.py or mark the "
            "block with a first comment line '# needs <what> (not run by the tests)'"
        )


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_command_names_real_tools_flags_and_configs(block: Block) -> None:
    for tokens in block.commands():
        check_statically(*program(tokens), str(block))


def test_install_shows_the_slurm_scripts_as_they_are() -> None:
    shown = [m.group(1) for m in FENCE.finditer((REPO / "INSTALL.md").read_text())]
    assert [path.name for path in SLURM_SCRIPTS] == ["train_1node.sbatch", "train_multinode.sbatch"]
    for path in SLURM_SCRIPTS:
        assert path.read_text() in shown, f"INSTALL.md must show {path.relative_to(REPO)} as it is, in a ```bash block"


def test_the_readme_says_the_shortened_runs_are_fine() -> None:
    readme = (REPO / "README.md").read_text()
    assert "quick start shortened to `SOLVER.MAX_EPOCH" in readme
    assert f"`{' '.join(SHORTENED['tools/benchmark.py'])}`" in readme


# -- running the blocks ------------------------------------------------------------------------


def write_data_root(root: Path) -> None:
    """DATA.md's /data before its commands run: Kinetics raw videos (resize_videos.py writes
    videos/) with the CSVs, SSv2 .webm videos and SSv1 frame folders with their annotations."""
    kinetics = root / "kinetics"
    demo = root / "demo"  # 8 real H.264 videos, one per class
    one_each = ["--train-per-class", "1", "--val-per-class", "1", "--test-per-class", "1"]
    assert make_demo(["--out", str(demo), *one_each]) == 0
    kinetics.mkdir(parents=True)
    os.rename(demo / "videos", kinetics / "raw")
    rows = "".join(f"{line.removeprefix('videos/')}\n" for line in (demo / "train.csv").read_text().splitlines())
    for split in ("train", "val", "test"):
        (kinetics / f"{split}.csv").write_text(rows)
    (root / "ssv2").mkdir()
    (root / "ssv1").mkdir()
    make_ssv2(root / "ssv2", {"101": 16, "102": 16}, frames=False, webm=True)
    os.rename(root / "ssv2" / "videos", root / "ssv2" / "20bn-something-something-v2")
    make_ssv1(root / "ssv1", {"201": 12, "202": 12})
    for name in ("train.csv", "val.csv"):  # make_ssv1_lists.py writes them
        (root / "ssv1" / name).unlink()
    os.rename(root / "ssv1" / "frames", root / "ssv1" / "20bn-something-something-v1")


@contextmanager
def chdir(folder: Path) -> Iterator[None]:
    """Run commands from ``folder``, as a user in their checkout (contextlib.chdir needs 3.11)."""
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


@dataclass
class Sandbox:
    """A folder as a user's checkout is after a (tiny) quick start, with DATA.md's /data,
    ``my_clips`` (a folder per class) and ``new_clips``. Blocks run in the order of their document,
    as a reader follows it: running one first runs the blocks above it that have not run yet."""

    root: Path
    done: set[Block]

    def run(self, block: Block) -> None:
        for earlier in RUNNABLE[: RUNNABLE.index(block) + 1]:
            if earlier.doc == block.doc and earlier not in self.done:
                self.done.add(earlier)  # once, even if it fails
                with chdir(self.root):
                    for tokens in earlier.commands():
                        run_command(tokens, self.root, str(earlier))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    root = tmp_path_factory.mktemp("docs")
    for name in ("configs", "tools"):
        (root / name).symlink_to(REPO / name)
    write_data_root(root / "data")
    with chdir(root):
        run_command(["python", "tools/make_demo_dataset.py", *DEMO_SIZES], root, "sandbox")
        run_command(["python", "tools/quickstart.py"], root, "sandbox")
    write_class_folders(root / "demo_data" / "motion", root / "my_clips", root / "new_clips")
    return Sandbox(root, set())


def write_class_folders(demo: Path, out: Path, new_clips: Path) -> None:
    """DATA.md's and README's ``my_clips``: the demo's videos of README's 5 classes as
    {train,val,test}/<class name>/<video> links, and README's ``new_clips/``: the test videos again."""
    names = (demo / "classes.txt").read_text().splitlines()[:FINE_TUNE_CLASSES]
    new_clips.mkdir()
    for split in ("train", "val", "test"):
        for line in (demo / f"{split}.csv").read_text().splitlines():
            video, label = line.rsplit(" ", 1)
            if int(label) >= len(names):
                continue
            target = out / split / names[int(label)] / Path(video).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(demo / video)
            if split == "test":
                (new_clips / Path(video).name).symlink_to(demo / video)


def run_command(tokens: list[str], root: Path, where: str) -> None:
    kind, argv = program(tokens)
    if kind in ("pip", "pytest"):  # this environment is the one they install; CI runs the suite
        return
    argv = [str(root) + t if t == "/data" or t.startswith("/data/") else t for t in argv]
    argv += SHORTENED.get(kind, [])
    if tokens[0] == "torchrun":
        env = checkout_environ(os.environ)
        result = subprocess.run(tokens, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{where}: {' '.join(tokens)}\n{result.stderr[-3000:]}"
        return
    module = importlib.import_module(f"vov3d.cli.{Path(kind).stem}")
    # The model benchmark times each cell in a fresh process; here the start-ups would cost a minute.
    with mock.patch("vov3d.benchmark.model.isolated", lambda fn, spec: fn(spec)):
        assert module.main(argv) == 0, f"{where}: {' '.join(tokens)} failed"


RUNNABLE = [b for b in BLOCKS if not b.marked and not run_by_ci(b)]


@pytest.mark.parametrize("block", RUNNABLE, ids=str)
def test_block_runs_as_written(block: Block, sandbox: Sandbox) -> None:
    sandbox.run(block)


def test_shortened_quick_start_says_its_warmup_is_cut(vov3d_log: pytest.LogCaptureFixture) -> None:
    """README (Configs): a quick start shortened below its warm-up runs, with a one-line warning."""
    load_config([str(REPO / "configs" / "quickstart" / "vov3d_motion.yaml")], SHORTENED["tools/quickstart.py"])
    (warning,) = [r for r in vov3d_log.records if "SOLVER.WARMUP_EPOCHS" in r.getMessage()]
    assert "the learning rate never reaches SOLVER.BASE_LR" in warning.getMessage()


def readme_block(text: str) -> Block:
    return next(b for b in BLOCKS if b.doc == "README.md" and text in b.text)


def value_of(tokens: list[str], key: str) -> str:
    return tokens[tokens.index(key) + 1]


def per_class_names(output_dir: Path) -> list[str]:
    with open(RunFolder(str(output_dir)).per_class_path, newline="") as f:
        return [row["name"] for row in csv.DictReader(f)]


def test_readme_cpu_fine_tune_starts_from_the_quick_start_run(sandbox: Sandbox) -> None:
    """README's CPU block, as written: the quick start's run folder stands in for the zoo weights,
    offline, and the folder names travel into the checkpoint and the test's per-class table."""
    block = readme_block("output/my_clips_cpu")
    sandbox.run(block)
    train = block.commands()[0]
    run = RunFolder(str(sandbox.root / value_of(train, "OUTPUT_DIR")))
    names = sorted(
        folder.name for folder in (sandbox.root / value_of(train, "DATA.PATH_TO_DATA_DIR") / "train").iterdir()
    )
    assert len(names) == int(value_of(train, "MODEL.NUM_CLASSES"))
    start = value_of(train, "TRAIN.CHECKPOINT_FILE_PATH")
    assert re.search(
        rf"initialised from {start}/checkpoints/checkpoint_epoch_\d+\.pyth", Path(run.log_path()).read_text()
    )
    assert torch.load(run.best_path, weights_only=True)["class_names"] == names
    assert per_class_names(Path(run.root)) == names


def test_install_torchrun_example_names_the_classes(sandbox: Sandbox) -> None:
    """INSTALL's two CPU processes, as written: rank 0's per-class table names the demo's classes."""
    block = next(b for b in RUNNABLE if b.doc == "INSTALL.md" and "torchrun" in b.text)
    sandbox.run(block)
    command = next(tokens for tokens in block.commands() if tokens[0] == "torchrun")
    names = (sandbox.root / value_of(command, "DATA.PATH_TO_DATA_DIR") / "classes.txt").read_text().splitlines()
    assert per_class_names(sandbox.root / value_of(command, "OUTPUT_DIR")) == names


@pytest.mark.parametrize("dataset", ["ssv1", "ssv2"])
def test_readme_something_something_paths_fit_data_md_layouts(dataset: str, sandbox: Sandbox) -> None:
    """README's DATA.PATH_PREFIX is where DATA.md's tools put the frames: the SS configs read them."""
    tool = "make_ssv1_lists.py" if dataset == "ssv1" else "extract_frames.py"
    sandbox.run(next(b for b in RUNNABLE if b.doc == "DATA.md" and tool in b.text))
    (command,) = readme_block(f"configs/{dataset.replace('ss', 'SS')}/").commands()
    root = str(sandbox.root / "data" / dataset)
    argv = [t.replace(f"path/to/your/{dataset}", root) for t in program(command)[1]]
    cfg = run_net.setup_cfg(run_net.parse_args(argv + ["DATA.NUM_FRAMES", "4"]))
    frames, *_ = build_dataset(cfg, "train")[0]
    assert frames.shape[0] == 4  # uint8 T x H x W x 3


def test_readme_speed_figures_are_those_of_its_benchmark_command() -> None:
    """The speed-ups README quotes are BENCHMARKS.md's rows of variants its command runs."""
    readme = (REPO / "README.md").read_text()
    (command,) = readme_block("tools/benchmark.py model").commands()
    argv = program(command)[1]
    variants = argv[argv.index("--variants") + 1].split(",")
    model = Path(argv[argv.index("--configs") + 1]).stem
    quoted = re.findall(r"training step \(`(\S+)`\) ([\d.]+)x and inference \(`(\S+)`\) ([\d.]+)x", readme)
    assert len(quoted) == 1, "README no longer quotes the training and inference speed-ups as expected here"
    train, train_ratio, infer, infer_ratio = quoted[0]
    tables = (REPO / "BENCHMARKS.md").read_text()
    for mode, variant, ratio in (("train", train, train_ratio), ("infer", infer, infer_ratio)):
        assert variant in variants, f"README quotes {variant}, which its command ({','.join(variants)}) does not run"
        row = rf"^\| {model} \| {mode} \| {re.escape(variant)} \| [\d.]+ \| {re.escape(ratio)} \|"
        assert re.search(row, tables, re.MULTILINE), f"BENCHMARKS.md has no {model} {mode} {variant} row at {ratio}x"
