"""A yacs CfgNode that understands ``_BASE_``, names the file of every error, and remembers
where each key was set so that later errors (validation, model building) can point there."""

from __future__ import annotations

import ast
import difflib
import logging
import os
from typing import Any, Iterator

import yaml
from iopath.common.file_io import g_pathmgr
from yacs.config import CfgNode as _YacsCfgNode

from .compat import ANY, ignored_rule

logger = logging.getLogger(__name__)

BASE_KEY = "_BASE_"
_SOURCES = "__sources__"


class ConfigError(ValueError):
    """A config value or file is wrong; the message says which key, where, and what would fit."""


class CfgNode(_YacsCfgNode):
    """The config tree. ``merge_from_file`` follows ``_BASE_``; both merges check every key."""

    def merge_from_file(self, cfg_filename: str) -> None:
        _merge_file(self, cfg_filename, chain=())

    def merge_from_list(self, cfg_list: list) -> None:
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` as typed on the command line."""
        for key, raw in override_pairs(cfg_list):
            merge_value(self, key, raw, "the command line")


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

    for key, value in _flatten(data):
        merge_value(cfg, key, value, filename)


def _flatten(data: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, full + ".")
        else:
            yield full, value


def merge_value(cfg: CfgNode, key: str, value: Any, source: str) -> None:
    """Set ``key`` (dotted) to ``value`` as read from ``source``, checked and typed as every merge is."""
    if _ignored(cfg, key, value, source):
        return
    parts = key.split(".")
    node: Any = cfg
    for depth, part in enumerate(parts):
        if not isinstance(node, _YacsCfgNode) or part not in node:
            raise ConfigError(f"{source}: unknown config key {key}{_suggest(cfg, key)}")
        if depth < len(parts) - 1:
            node = node[part]
    current = node[parts[-1]]
    if isinstance(current, _YacsCfgNode):
        raise ConfigError(f"{source}: {key} is a section; set one of its keys, e.g. {key}.{next(iter(current))}")
    node[parts[-1]] = _coerce(_decode(value, current), current, key, source)
    _record_source(cfg, key, source)


def _ignored(cfg: CfgNode, key: str, value: Any, source: str) -> bool:
    rule = ignored_rule(key)
    if rule is None:
        return False
    name, expected = rule
    value = _decode(value, None)
    if expected is not ANY and value != expected:  # _decode made tuples lists
        raise ConfigError(
            f"{source}: {key} = {value!r} is not supported; vov3d's networks always behave as {key} = {expected!r}"
        )
    warned = cfg.__dict__.setdefault("__warned__", set())
    if (name, source) not in warned:
        warned.add((name, source))
        logger.warning("%s: ignoring %s, which has no effect on X3D or VoV3D", source, name)
    return True


def _suggest(cfg: CfgNode, key: str) -> str:
    known = [k for k, _ in _flatten(_as_dict(cfg))]
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if not close:  # a wrong section with a right leaf name, e.g. TRAIN.NUM_FRAMES
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in known if k.rsplit(".", 1)[-1] == leaf][:3]
    return f"; did you mean {' or '.join(close)}?" if close else ""


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


def _coerce(value: Any, current: Any, key: str, source: str) -> Any:
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
        raise ConfigError(
            f"{source}: {key} expects a {expected.__name__} (default {current!r}), "
            f"got {value!r} ({type(value).__name__})"
        )
    return value
