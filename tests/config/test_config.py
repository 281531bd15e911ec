"""Config loading: _BASE_ chains, overrides, ignored legacy keys and every validation error."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import CONFIGS, REPO
from vov3d.config import ConfigError, get_cfg, key_source, load_config, save_config
from vov3d.datasets.build import build_dataset
from vov3d.models import build_model


def write(path: Path, data: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return str(path)


ALL_CONFIGS = sorted(str(p) for p in CONFIGS.rglob("*.yaml"))


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(Path(p).relative_to(CONFIGS)))
def test_every_config_file_loads_and_its_saved_copy_loads_the_same(path: str, tmp_path: Path) -> None:
    cfg = load_config([path])
    copy = tmp_path / "config.yaml"
    save_config(cfg, str(copy))
    assert load_config([str(copy)]) == cfg


def test_configs_exist() -> None:
    assert len(ALL_CONFIGS) >= 24, "the 20 paper configs, the X3D sizes and their bases"


def test_base_chain_relative_to_the_file(tmp_path: Path) -> None:
    write(tmp_path / "bases" / "Base.yaml", {"SOLVER": {"BASE_LR": 0.5, "MAX_EPOCH": 7}})
    write(tmp_path / "bases" / "Mid.yaml", {"_BASE_": "Base.yaml", "SOLVER": {"MAX_EPOCH": 9}})
    child = write(tmp_path / "exp" / "child.yaml", {"_BASE_": "../bases/Mid.yaml", "RNG_SEED": 3})
    cfg = get_cfg()
    cfg.merge_from_file(child)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH, cfg.RNG_SEED) == (0.5, 9, 3)
    assert key_source(cfg, "SOLVER.MAX_EPOCH").endswith("Mid.yaml")
    assert key_source(cfg, "SOLVER.BASE_LR").endswith("Base.yaml")
    assert key_source(cfg, "NUM_GPUS") == "the defaults"


def test_base_list_and_cycle(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", {"_BASE_": ["b.yaml"], "RNG_SEED": 1})
    write(tmp_path / "b.yaml", {"_BASE_": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        get_cfg().merge_from_file(a)


def test_missing_base_names_the_child(tmp_path: Path) -> None:
    child = write(tmp_path / "child.yaml", {"_BASE_": "nope.yaml"})
    with pytest.raises(ConfigError, match=r"nope\.yaml.*_BASE_ of .*child\.yaml"):
        get_cfg().merge_from_file(child)


def test_unknown_key_names_file_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path / "typo.yaml", {"SOLVER": {"BASE_RL": 0.1}})
    with pytest.raises(ConfigError) as err:
        get_cfg().merge_from_file(path)
    assert "typo.yaml" in str(err.value) and "SOLVER.BASE_RL" in str(err.value)
    assert "SOLVER.BASE_LR" in str(err.value)


def test_unknown_key_in_wrong_section_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match="did you mean DATA.NUM_FRAMES"):
        get_cfg().merge_from_list(["TRAIN.NUM_FRAMES", "8"])


def test_every_unknown_key_of_a_file_is_reported_in_one_error(tmp_path: Path) -> None:
    """A PySlowFast-style file with several keys vov3d does not know: one error lists them all,
    each hint taken from the key's own section only."""
    path = tmp_path / "pyslowfast.yaml"
    path.write_text(
        "TRAIN:\n  CHECKPOINT_TYPE: pytorch\n  BATCH_SIZ: 8\n"
        "CONTRASTIVE:\n  ENABLE: False\n"
        "AVA:\n  FULL_TEST_ON_VAL: False\n  DETECTION_SCORE_THRESH: 0.8\n"
        "TEST:\n  CHECKPOINT_TYPE: pytorch\n"
    )
    with pytest.raises(ConfigError) as err:
        get_cfg().merge_from_file(str(path))
    first, *lines = str(err.value).splitlines()
    assert first == f"{path}: 4 keys are wrong:"
    assert [line.strip() for line in lines] == [
        "unknown config key TRAIN.BATCH_SIZ; did you mean TRAIN.BATCH_SIZE?",
        "unknown config key CONTRASTIVE.ENABLE (there is no CONTRASTIVE section)",
        "unknown config key AVA.FULL_TEST_ON_VAL (there is no AVA section)",
        "unknown config key AVA.DETECTION_SCORE_THRESH (there is no AVA section)",
    ]


def test_every_wrong_override_is_reported_in_one_error() -> None:
    with pytest.raises(ConfigError) as err:
        get_cfg().merge_from_list(["MASK.ENABLE", "True", "SOLVER.BASE_RL", "0.1", "NUM_GPUS", "x", "RNG_SEED", "3"])
    first, *lines = str(err.value).splitlines()
    assert first == "the command line: 3 keys are wrong:" and len(lines) == 3
    assert "MASK.ENABLE" in lines[0] and "TEST.ENABLE" not in lines[0] and "did you mean" not in lines[0]
    assert "did you mean SOLVER.BASE_LR?" in lines[1]
    assert "NUM_GPUS expects a int" in lines[2]


@pytest.mark.parametrize(
    "key, hint",
    [
        ("TRIAN.ENABLE", "; did you mean TRAIN.ENABLE?"),  # a misspelt section holding the key
        ("NUM_GPU", "; did you mean NUM_GPUS?"),  # the root is a section too
        ("TEST.NUM_FRAMES", "; did you mean DATA.NUM_FRAMES?"),  # the one section with this exact key
        ("TEST.MAX_EPOCH", "; did you mean SOLVER.MAX_EPOCH?"),
        ("TRAIN.ENABLE_X", "; did you mean TRAIN.ENABLE?"),
        ("CONTRASTIVE.BATCH_SIZE", " (there is no CONTRASTIVE section)"),  # not TRAIN.BATCH_SIZE or TEST.BATCH_SIZE
        ("SOLVER.BASE_LR.X", " (SOLVER.BASE_LR is a value, not a section)"),
    ],
)
def test_unknown_key_hints_come_from_its_own_section(key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        get_cfg().merge_from_list([key, "1"])
    assert str(err.value) == f"the command line: unknown config key {key}{hint}"


@pytest.mark.parametrize("section", ["TRAIN", "TEST"])
def test_checkpoint_type_pytorch_is_accepted_with_a_note(section: str, vov3d_log) -> None:
    cfg = load_config([], [f"{section}.CHECKPOINT_TYPE", "pytorch"])
    assert cfg == load_config([])
    notes = [r.getMessage() for r in vov3d_log.records if "CHECKPOINT_TYPE" in r.getMessage()]
    assert notes == [
        f"the command line: ignoring {section}.CHECKPOINT_TYPE: checkpoints are always read as PyTorch files"
    ]


@pytest.mark.parametrize("section", ["TRAIN", "TEST"])
def test_caffe2_checkpoints_are_a_clear_error(section: str, tmp_path: Path) -> None:
    path = write(tmp_path / "c2.yaml", {section: {"CHECKPOINT_TYPE": "caffe2"}})
    with pytest.raises(ConfigError) as err:
        load_config([path])
    message = str(err.value)
    assert message.startswith(f"{path}: {section}.CHECKPOINT_TYPE = 'caffe2' is not supported: ")
    assert "Caffe2 .pkl checkpoints are not read" in message and "PyTorch checkpoint" in message


def test_pytorchvideo_x3d_is_refused_with_what_to_use(tmp_path: Path) -> None:
    """PySlowFast's configs/Kinetics/pytorchvideo/X3D_*.yaml build PyTorchVideo's X3D, which lacks the
    BatchNorm of the first res2 block's shortcut that PySlowFast's X3D (ours) has."""
    path = write(tmp_path / "X3D_XS.yaml", {"MODEL": {"ARCH": "x3d", "MODEL_NAME": "PTVX3D"}, "X3D": {"DIM_C1": 12}})
    with pytest.raises(ConfigError) as err:
        load_config([path])
    message = str(err.value)
    assert message.startswith(f"{path}: MODEL.MODEL_NAME = 'PTVX3D' is not supported: PyTorchVideo's X3D")
    assert "no BatchNorm on its strided shortcut" in message and "use MODEL.MODEL_NAME X3D" in message
    # The BatchNorm it names is there in our X3D of every size (the stem and res2 both 24 channels wide).
    for size in ("XS", "S", "M", "L"):
        cfg = load_config([str(CONFIGS / "Kinetics" / "x3d" / f"X3D_{size}.yaml")])
        block = build_model(cfg).s2.pathway0_res0
        assert block.branch1.in_channels == block.branch1.out_channels == 24
        assert isinstance(block.branch1_bn, torch.nn.BatchNorm3d)


@pytest.mark.parametrize(
    "key, value",
    [("NUM_GPUS", 1.5), ("TRAIN.ENABLE", "yes"), ("DATA.TRAIN_JITTER_SCALES", 256), ("SOLVER.BASE_LR", "fast")],
)
def test_wrong_type_names_key_and_file(tmp_path: Path, key: str, value: object) -> None:
    section, _, leaf = key.rpartition(".")
    data = {section: {leaf: value}} if section else {leaf: value}
    path = write(tmp_path / "types.yaml", data)
    with pytest.raises(ConfigError, match=rf"types\.yaml: {key} expects"):
        get_cfg().merge_from_file(path)


def test_int_becomes_float_and_bool_strings() -> None:
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.BASE_LR", "1", "TRAIN.ENABLE", "false", "DATA.PATH_TO_DATA_DIR", "/data/k400"])
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.TRAIN.ENABLE is False
    assert cfg.DATA.PATH_TO_DATA_DIR == "/data/k400"
    assert key_source(cfg, "SOLVER.BASE_LR") == "the command line"


def test_odd_override_count_names_the_token() -> None:
    with pytest.raises(ConfigError, match="'TRAIN.BATCH_SIZE' has no value"):
        load_config([], ["NUM_GPUS", "1", "TRAIN.BATCH_SIZE"])


def test_ignored_legacy_keys_warn_once(tmp_path: Path) -> None:
    path = write(
        tmp_path / "legacy.yaml",
        {
            "NONLOCAL": {"LOCATION": [[[]], [[]], [[]], [[]]], "GROUP": [[1], [1], [1], [1]]},
            "RESNET": {"NUM_BLOCK_TEMP_KERNEL": [[3], [4]], "ZERO_INIT_FINAL_BN": True},
            "DETECTION": {"ENABLE": False},
        },
    )
    cfg = get_cfg()
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logging.getLogger("vov3d.config").addHandler(handler)
    try:
        cfg.merge_from_file(path)
    finally:
        logging.getLogger("vov3d.config").removeHandler(handler)
    ignored = [r.getMessage() for r in records if "ignoring" in r.getMessage()]
    assert len(ignored) == 3, ignored  # NONLOCAL once, not once per sub-key
    assert all("legacy.yaml" in line for line in ignored)
    assert cfg.RESNET.ZERO_INIT_FINAL_BN is True


def test_ignored_key_with_a_meaningful_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="DETECTION.ENABLE = True is not supported"):
        get_cfg().merge_from_list(["DETECTION.ENABLE", "True"])


def test_setting_a_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="SOLVER is a section"):
        get_cfg().merge_from_list(["SOLVER", "1"])


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("SOLVER: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        get_cfg().merge_from_file(str(path))


@pytest.mark.parametrize(
    "opts, key, words",
    [
        (["TRAIN.BATCH_SIZE", "6", "NUM_GPUS", "4"], "TRAIN.BATCH_SIZE", "multiple of NUM_GPUS"),
        (["TEST.BATCH_SIZE", "3", "NUM_GPUS", "2"], "TEST.BATCH_SIZE", "multiple of NUM_GPUS"),
        (["NUM_SHARDS", "2", "SHARD_ID", "2"], "SHARD_ID", "[0, NUM_SHARDS)"),
        (["DATA.ENSEMBLE_METHOD", "mean"], "DATA.ENSEMBLE_METHOD", "sum or max"),
    ],
)
def test_validation_errors_name_key_and_source(opts: list, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config([], opts)
    message = str(err.value)
    assert key in message and words in message and "the command line" in message


@pytest.mark.parametrize(
    "opts, key, words",
    [
        (["MODEL.MODEL_NAME", "ResNet"], "MODEL.MODEL_NAME", "registered: VoV3D, X3D"),
        (["MODEL.ARCH", "vov3d"], "MODEL.ARCH", "another network"),
        (["VOV3D.DEPTH", "19", "MODEL.MODEL_NAME", "VoV3D", "MODEL.ARCH", "vov3d"], "VOV3D.DEPTH", "19"),
    ],
)
def test_model_names_are_checked_where_the_model_is_built(opts: list, key: str, words: str) -> None:
    cfg = load_config([], opts + ["LOG_MODEL_INFO", "False"])  # the config layer knows no registry
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    message = str(err.value)
    assert key in message and words in message and "the command line" in message


def test_dataset_names_are_checked_where_the_dataset_is_built() -> None:
    cfg = load_config([], ["TRAIN.DATASET", "ucf101"])
    message = r"TRAIN.DATASET = 'ucf101' \(set in the command line\).*registered: folder, kinetics"
    with pytest.raises(ConfigError, match=message):
        build_dataset(cfg, "train")


def _imported(node: ast.AST) -> list[str]:
    """The modules an import statement names, relative ones resolved inside vov3d.config."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if not node.level:
        return [node.module or ""]
    if node.module:
        return [f"vov3d.config.{node.module}"]
    return [f"vov3d.config.{a.name}" for a in node.names]


def _config_imports(folder: Path) -> dict[str, set[str]]:
    """{module of vov3d/config: the vov3d modules it imports anywhere, inside functions too}."""
    graph = {}
    for path in sorted(folder.glob("*.py")):
        name = "vov3d.config" if path.stem == "__init__" else f"vov3d.config.{path.stem}"
        names = {m for node in ast.walk(ast.parse(path.read_text())) for m in _imported(node)}
        graph[name] = {m for m in names if m.startswith("vov3d")}
    return graph


def test_the_config_layer_imports_nothing_above_it_and_has_no_circle() -> None:
    graph = _config_imports(REPO / "vov3d" / "config")
    outside = {m: sorted(i for i in deps if not i.startswith("vov3d.config")) for m, deps in graph.items()}
    assert not any(outside.values()), outside

    def reaches(start: str, target: str, seen: set) -> bool:
        return any(d == target or (d not in seen and reaches(d, target, seen | {d})) for d in graph.get(start, ()))

    circles = [m for m in graph if m != "vov3d.config" and reaches(m, m, set())]
    assert not circles, circles


def test_validation_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bs.yaml", {"NUM_GPUS": 8, "TRAIN": {"BATCH_SIZE": 12}})
    with pytest.raises(ConfigError, match=r"TRAIN.BATCH_SIZE = 12 \(set in .*bs\.yaml\)"):
        load_config([path])


def test_files_then_overrides_then_frozen_and_saved(tmp_path: Path) -> None:
    first = write(tmp_path / "one.yaml", {"SOLVER": {"MAX_EPOCH": 5}, "RNG_SEED": 4})
    second = write(tmp_path / "two.yaml", {"SOLVER": {"MAX_EPOCH": 6}})
    cfg = load_config([first, second], ["SOLVER.MAX_EPOCH", "8"])
    assert (cfg.SOLVER.MAX_EPOCH, cfg.RNG_SEED) == (8, 4)
    with pytest.raises(AttributeError):
        cfg.RNG_SEED = 5
    out = tmp_path / "config.yaml"
    save_config(cfg, str(out))
    again = load_config([str(out)])
    assert again == cfg
