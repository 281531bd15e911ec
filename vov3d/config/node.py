"""A yacs CfgNode that understands ``_BASE_``, names the file of every error, and remembers
where each key was set so that later errors (validation, model building) can point there."""

from __future__ import annotations

import ast
import difflib
import logging
import os
from typing import Any, Iterable, Iterator

import yaml
from iopath.common.file_io import g_pathmgr
from yacs.config import CfgNode as _YacsCfgNode

from .compat import ANY, ignore_note, ignored_rule, refusal

logger = logging.getLogger(__name__)

BASE_KEY = "_BASE_"
_SOURCES = "__sources__"


class ConfigError(ValueError):
    """A config value or file is wrong; the message says which key, where, and what would fit."""


class _KeyProblem(Exception):
    """What is wrong with one key; the merge that collects them names the file or command line."""


class CfgNode(_YacsCfgNode):
    """The config tree. ``merge_from_file`` follows ``_BASE_``; both merges check every key."""

    def merge_from_file(self, cfg_filename: str) -> None:
        _merge_file(self, cfg_filename, chain=())

    def merge_from_list(self, cfg_list: list) -> None:
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` as typed on the command line."""
        _merge_all(self, override_pairs(cfg_list), "the command line")


def override_pairs(tokens: list) -> list[tuple[str, Any]]:
    """``[KEY, VALUE, ...]`` as pairs; an odd count names the token that has no value."""
    if len(tokens) % 2:
        raise ConfigError(f"command-line override {tokens[-1]!r} has no value: overrides come in KEY VALUE pairs")
    return list(zip(tokens[0::2], tokens[1::2]))


def key_source(cfg: CfgNode, key: str) -> str:
    """Where ``key`` (dotted) got its value: a file name, 'the command line' or 'the defaults'."""
    return cfg.__dict__.get(_SOURCES, {}).get(key, "the defaults")


def cfg_error(cfg: CfgNode, key: str, message: str) -> ConfigError:
    """A ConfigError that names the key, its value and where it was set."""
    return ConfigError(f"{key} = {_lookup(cfg, key)!r} (set in {key_source(cfg, key)}): {message}")


def _lookup(cfg: CfgNode, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _record_source(cfg: CfgNode, key: str, source: str) -> None:
    cfg.__dict__.setdefault(_SOURCES, {})[key] = source


def _merge_file(cfg: CfgNode, filename: str, chain: tuple) -> None:
    where = f" (the {BASE_KEY} of {chain[-1]})" if chain else ""
    if not g_pathmgr.isfile(filename):
        raise ConfigError(f"config file not found: {filename}{where}")
    try:
        with g_pathmgr.open(filename, "r") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{filename}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}: a config file must be a mapping of keys, got {type(data).__name__}")

    bases = data.pop(BASE_KEY, [])
    for base in [bases] if isinstance(bases, str) else bases:
        base = os.path.expanduser(base)
        if not os.path.isabs(base):
            base = os.path.join(os.path.dirname(filename), base)
        base = os.path.normpath(base)
        if base in chain or base == os.path.normpath(filename):
            raise ConfigError(f"{filename}: {BASE_KEY} {base} makes a cycle: {' -> '.join(chain)}")
        _merge_file(cfg, base, chain + (os.path.normpath(filename),))

    _merge_all(cfg, _flatten(data), filename)


def _flatten(data: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, full + ".")
        else:
            yield full, value


def merge_value(cfg: CfgNode, key: str, value: Any, source: str) -> None:
    """Set ``key`` (dotted) to ``value`` as read from ``source``, checked and typed as every merge is."""
    _merge_all(cfg, [(key, value)], source)


def _merge_all(cfg: CfgNode, items: Iterable[tuple[str, Any]], source: str) -> None:
    """Merge every ``(key, value)`` of one source; what is wrong with any of its keys is reported
    in one ConfigError, so that a file from elsewhere is fixed in one go, not one key per run."""
    problems = []
    for key, value in items:
        try:
            _merge_one(cfg, key, value, source)
        except _KeyProblem as e:
            problems.append(str(e))
    if len(problems) == 1:
        raise ConfigError(f"{source}: {problems[0]}")
    if problems:
        raise ConfigError(f"{source}: {len(problems)} keys are wrong:\n" + "\n".join(f"  {p}" for p in problems))


def _merge_one(cfg: CfgNode, key: str, value: Any, source: str) -> None:
    reason = refusal(key, _decode(value, None))
    if reason is not None:  # a value vov3d cannot honour, e.g. TRAIN.CHECKPOINT_TYPE caffe2
        raise _KeyProblem(f"{key} = {value!r} is not supported: {reason}")
    if _ignored(cfg, key, value, source):
        return
    parts = key.split(".")
    node: Any = cfg
    for depth, part in enumerate(parts):
        if not isinstance(node, _YacsCfgNode) or part not in node:
            raise _KeyProblem(f"unknown config key {key}{_suggest(cfg, parts, depth)}")
        if depth < len(parts) - 1:
            node = node[part]
    current = node[parts[-1]]
    if isinstance(current, _YacsCfgNode):
        raise _KeyProblem(f"{key} is a section; set one of its keys, e.g. {key}.{next(iter(current))}")
    node[parts[-1]] = _coerce(_decode(value, current), current, key)
    _record_source(cfg, key, source)


def _ignored(cfg: CfgNode, key: str, value: Any, source: str) -> bool:
    rule = ignored_rule(key)
    if rule is None:
        return False
    name, expected = rule
    value = _decode(value, None)
    if expected is not ANY and value != expected:  # _decode made tuples lists
        raise _KeyProblem(f"{key} = {value!r} is not supported; vov3d always behaves as {key} = {expected!r}")
    warned = cfg.__dict__.setdefault("__warned__", set())
    if (name, source) not in warned:
        warned.add((name, source))
        logger.warning("%s: ignoring %s: %s", source, name, ignore_note(name))
    return True


def _suggest(cfg: CfgNode, parts: list[str], depth: int) -> str:
    """A hint for the key ``parts`` whose part ``depth`` is unknown, from its own section only:
    a close name there (TRAIN.BATCH_SIZ), a close section holding the rest (TRIAN.BATCH_SIZE),
    or, for a known section, the one other section that has this exact key (TRAIN.NUM_FRAMES ->
    DATA.NUM_FRAMES). An unknown section gets no guess from elsewhere (CONTRASTIVE.ENABLE is not
    TEST.ENABLE)."""
    section, part, rest = parts[:depth], parts[depth], parts[depth + 1 :]
    node = _lookup(cfg, ".".join(section)) if section else cfg
    if not isinstance(node, _YacsCfgNode):  # a key below a value, e.g. SOLVER.BASE_LR.X
        return f" ({'.'.join(section)} is a value, not a section)"
    names = [k for k, v in node.items() if isinstance(v, _YacsCfgNode) == bool(rest)]
    close = [
        ".".join(section + [name] + rest)
        for name in difflib.get_close_matches(part, names, n=3, cutoff=0.6)
        if _has_key(node[name], rest)
    ]
    if not close and section and not rest:
        homes = [k for k, _ in _flatten(_as_dict(cfg)) if k.rsplit(".", 1)[-1] == part]
        close = homes if len(homes) == 1 else []
    if close:
        return f"; did you mean {' or '.join(close)}?"
    return f" (there is no {'.'.join(section + [part])} section)" if rest else ""


def _has_key(node: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(node, _YacsCfgNode) or part not in node:
            return False
        node = node[part]
    return not isinstance(node, _YacsCfgNode)


def _as_dict(node: _YacsCfgNode) -> dict:
    return {k: _as_dict(v) if isinstance(v, _YacsCfgNode) else v for k, v in node.items()}


def _decode(value: Any, current: Any) -> Any:
    """Read strings as Python literals where they are one, as yacs does for files and the command
    line: YAML 1.1 reads ``5e-5`` (no dot) and ``(256, 320)`` as strings. Strings inside lists are
    read too; a string key keeps its text, so a folder may be called ``1e5``."""
    if isinstance(value, (list, tuple)):
        return [_decode(v, None) for v in value]
    if not isinstance(value, str) or isinstance(current, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _coerce(value: Any, current: Any, key: str) -> Any:
    expected = type(current)
    if expected is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif expected is str:
        value = "" if value is None else value
        ok = isinstance(value, str)
    elif expected in (list, tuple):
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise _KeyProblem(
            f"{key} expects a {expected.__name__} (default {current!r}), got {value!r} ({type(value).__name__})"
        )
    return value
