"""Command configs: one dataclass per command; defaults < YAML file (``--config``) < command-line flags.

Fields are declared with :func:`option` (default + help text + optional aliases / choices). A field whose type
is itself a config dataclass is a section: a YAML mapping (``engine:``) whose fields take flags with the
section's path as prefix, one rule everywhere: ``--engine.model``, ``--engine.vllm.gpu-memory-utilization``.
Fields may declare shorter aliases (``--model``, ``-o``); an alias that two fields declare, or that is another
field's flag, is left out, so sections never collide (a command with its own ``--seed`` beside an engine section
keeps ``--engine.seed`` for the engine). A class may list keys that moved into a section (``MOVED``): they are
still read from YAML, with a warning naming the new place. Unknown YAML keys and keys given twice are errors that
name the key; values are validated in each dataclass's ``__post_init__`` with errors that name the flag to change
(:func:`resolve` names the YAML key instead when the value came from the file). A mapping-valued flag
(``--layout-weights dialog=0.1``) updates the keys it names and keeps the others. The resolved config is written
into every output directory (``config.yaml``) so a run can be repeated exactly.
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import dataclasses
import logging
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from instructpt.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)


def option(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    positional: bool = False,
    aliases: tuple[str, ...] = (),
) -> Any:
    """A config field with its command-line help. Lists take a ``default_factory`` automatically."""
    meta = {"help": help, "choices": choices, "positional": positional, "aliases": tuple(aliases)}
    if isinstance(default, list | dict):

        def fresh() -> Any:  # a copy per instance, never the one default object
            return type(default)(default)

        return dataclasses.field(default_factory=fresh, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(scalar type, is_list) of an annotation such as ``int``, ``str | None`` or ``list[str]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    if origin is list:
        return typing.get_args(tp)[0], True
    return tp, False


def flag_of(dest: str) -> str:
    """The flag of a field at ``dest`` (``engine.max_model_len`` -> ``--engine.max-model-len``)."""
    return "--" + dest.replace("_", "-")


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field, type]]:
    """``(dest, field, owning class)`` of every non-section field, sections flattened in declaration order."""
    out: list[tuple[str, dataclasses.Field, type]] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if _is_config(hints[f.name]):
            out += _leaves(hints[f.name], prefix + f.name + ".")
        else:
            out.append((prefix + f.name, f, cls))
    return out


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> list[str]:
    """Add one flag per field (sections by their path, aliases where unambiguous); unset flags leave no
    attribute (SUPPRESS). Returns the aliases left out because two fields, or a field's flag, claim them."""
    leaves = _leaves(cls)
    flags = {flag_of(dest) for dest, _, _ in leaves}
    claims = collections.Counter(a for _, f, _ in leaves for a in f.metadata.get("aliases", ()))
    dropped = sorted(a for a, n in claims.items() if n > 1 or a in flags)
    groups: dict[str, Any] = {}
    for dest, f, owner in leaves:
        aliases = [a for a in f.metadata.get("aliases", ()) if a not in dropped]
        section = dest.rpartition(".")[0]
        if section and section not in groups:  # --help lists each section's options under its name
            doc = (owner.__doc__ or "").strip().splitlines()[0].replace("``", "") if owner.__doc__ else ""
            groups[section] = parser.add_argument_group(f"{section} options", doc or None)
        target = groups.get(section, parser)
        _add_one(target, dest, f, _hints(owner)[f.name], getattr(owner, "FIELD_HELP", {}), aliases)
    return dropped


def _add_one(
    parser: Any,  # a parser or one of its argument groups
    dest: str,
    f: dataclasses.Field,
    tp: Any,
    field_help: dict[str, str],
    aliases: list[str],
) -> None:
    base, is_list = _base_type(tp)
    factory: Any = f.default_factory
    default = f.default if f.default is not dataclasses.MISSING else factory()
    help_text = field_help.get(f.name, f.metadata.get("help", ""))
    if _is_mapping(base):
        help_text += " KEY=VALUE sets that key; the others keep their values (the file's or the default's)."
    help_text += _default_note(default, help_text, bool(f.metadata.get("positional")))
    kwargs: dict[str, Any] = {"help": help_text, "default": argparse.SUPPRESS}
    if f.metadata.get("choices"):
        kwargs["choices"] = f.metadata["choices"]
    if f.metadata.get("positional"):
        parser.add_argument(dest, nargs="*" if is_list else "?", metavar=f.name.upper(), **kwargs)
        return
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(base) is dict or base is dict:
        kwargs["type"] = parse_mapping
        kwargs["metavar"] = "KEY=VALUE,..."
    else:
        kwargs["type"] = base
        if "choices" not in kwargs:
            kwargs["metavar"] = f.name.upper()
        if is_list:
            kwargs["nargs"] = "+"
    parser.add_argument(flag_of(dest), *aliases, dest=dest, **kwargs)


def _default_note(default: Any, help_text: str, positional: bool) -> str:
    """`` [default: X]`` for --help: every default, booleans included; none for a required value (``""``) or a
    positional, nor for an unset one whose help already says what it defaults to."""
    if positional or default == "":
        return ""
    if default is None or default == [] or default == {}:
        return "" if "default" in help_text.lower() else " [default: none]"
    if isinstance(default, dict):
        default = ", ".join(f"{k}={v}" for k, v in default.items())
    elif isinstance(default, list):
        default = " ".join(map(str, default))
    return f" [default: {default}]"


def parse_mapping(text: str) -> dict[str, float]:
    """``"a=0.8,b=0.2"`` -> ``{"a": 0.8, "b": 0.2}`` (mapping-valued flags)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected KEY=NUMBER, got {part!r}") from None
        if not sep:
            raise argparse.ArgumentTypeError(f"expected KEY=NUMBER, got {part!r}")
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _merge(cls: type, base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Flags (``over``) on top of the YAML file's values (``base``): nested config sections merge key by key; a
    mapping-valued option (``--layout-weights dialog=0.1``) updates the keys it names and keeps the others of the
    file's mapping, or of the default when the file has none; any other value is replaced."""
    out = dict(base)
    hints = _hints(cls)
    for k, v in over.items():
        tp = hints.get(k)
        if tp is not None and _is_config(tp) and k in out and not isinstance(out[k], dict):
            raise ConfigError(f"config key {k!r} must be a mapping (its options go under it), got {out[k]!r}")
        if tp is not None and _is_config(tp) and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(tp, out[k], v)
        elif tp is not None and _is_mapping(tp) and isinstance(v, dict):
            kept = out[k] if isinstance(out.get(k), dict) else _default_of(cls, k)
            out[k] = {**kept, **v}
        else:
            out[k] = v
    return out


def _is_mapping(tp: Any) -> bool:
    base, is_list = _base_type(tp)
    return not is_list and (base is dict or typing.get_origin(base) is dict)


def _default_of(cls: type, name: str) -> Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    factory: Any = f.default_factory
    return dict(f.default if f.default is not dataclasses.MISSING else factory())


def build(cls: type[T], values: dict[str, Any], _where: str = "") -> T:
    """Instantiate ``cls`` from a (nested) dict; unknown keys raise :class:`ConfigError` naming the key."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cast(Any, cls))}
    values = _relocate(cls, values, _where)
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown config key '{_where}{unknown[0]}' (valid: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        tp = hints[name]
        if _is_config(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {_where}{name!r} must be a mapping")
            kwargs[name] = build(tp, value, f"{_where}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{_where}{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a missing required field
        raise ConfigError(str(exc)) from exc


def _relocate(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Keys listed in ``cls.MOVED`` (old key -> its path now) put where they live now; a value given at the new
    place as well wins."""
    moved: dict[str, str] = getattr(cls, "MOVED", {})
    if not any(k in moved for k in values):
        return values
    out = {k: v for k, v in values.items() if k not in moved}
    for old, new in moved.items():
        if old not in values:
            continue
        log.warning("config key %s%s is now %s%s", where, old, where, new)
        *parents, leaf = new.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key {where}{p!r} must be a mapping")
        node.setdefault(leaf, values[old])
    return out


def _coerce(value: Any, tp: Any, where: str) -> Any:
    base, is_list = _base_type(tp)
    if value is None:
        if type(None) not in typing.get_args(tp):
            raise ConfigError(f"config key {where!r} must be {getattr(base, '__name__', base)}, got null")
        return None
    if is_list:
        value = value if isinstance(value, list) else [value]
        return [_coerce(v, base, where) for v in value]
    if typing.get_origin(base) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {where!r} must be a mapping")
        return {str(k): _coerce(v, typing.get_args(base)[1], f"{where}.{k}") for k, v in value.items()}
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is str and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # YAML reads `revision: 1234` or `max_inflight_tokens: 20000` as ints
    if base in (int, float) and isinstance(value, bool):  # bool is an int in Python; `seed: true` is a slip
        raise ConfigError(f"config key {where!r} must be {base.__name__}, got {value!r}")
    if base in (int, float, str, bool) and not isinstance(value, base):
        raise ConfigError(f"config key {where!r} must be {base.__name__}, got {value!r}")
    return value


def resolve(cls: type[T], config_file: str | None, cli_values: dict[str, Any]) -> T:
    """defaults < YAML file < command-line flags (``cli_values`` holds only flags the user gave). A bad value is
    named as the user gave it: its flag, or its key in the YAML file (:func:`_name_sources`)."""
    values: dict[str, Any] = {}
    if config_file:
        values = load_yaml(config_file)
    try:
        return build(cls, _merge(cls, values, _nest(cli_values)))
    except ConfigError as exc:
        if not config_file:
            raise
        raise ConfigError(_name_sources(cls, str(exc), values, cli_values, config_file)) from exc


_FLAG = re.compile(r"--[a-z0-9]+(?:[.-][a-z0-9]+)*")


def _name_sources(
    cls: type, message: str, file_values: dict[str, Any], cli: dict[str, Any], file: str
) -> str:
    """``message`` with each flag whose value came from the YAML file (it is set there, and not by a flag) written
    as that file's key: ``--rounds must be >= 1`` -> ``rounds in c.yaml must be >= 1``."""
    dests: dict[str, str] = {}
    for dest, f, _ in _leaves(cls):
        for flag in (flag_of(dest), *f.metadata.get("aliases", ())):
            dests.setdefault(flag, dest)

    def name(match: re.Match) -> str:
        dest = dests.get(match.group(0))
        if dest is None or dest in cli or not _is_set(file_values, dest.split(".")):
            return match.group(0)
        return f"{dest} in {Path(file).name}"

    return _FLAG.sub(name, message)


def _is_set(values: Any, path: list[str]) -> bool:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return False
        values = values[key]
    return True


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, collections.abc.Hashable) and key in seen:
                raise ConfigError(
                    f"config key {key!r} appears twice (lines {seen[key]} and {line}); keep one"
                )
            if isinstance(key, collections.abc.Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    """The config as YAML that :func:`resolve` reads back to the same config."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
