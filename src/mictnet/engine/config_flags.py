"""Command-line flags generated from the configuration schema (:mod:`.train_config`).

Every field of every section is a flag: its short ``flag`` name where the field declares one
(``--lr``, typed, with choices), else ``--SECTION.KEY`` taking a YAML value like ``--set``. A flag
left out is absent from the parsed arguments, so only the flags given override the configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from .presets import list_presets, preset
from .train_config import TrainConfig, config_from_dict, parse_assignment


@dataclass(frozen=True)
class ConfigFlag:
    """One configuration field on the command line."""

    section: str
    field: dataclasses.Field
    annotation: Any

    @property
    def key(self) -> str:
        return f"{self.section}.{self.field.name}"

    @property
    def short(self) -> str | None:
        return self.field.metadata.get("flag")

    @property
    def option(self) -> str:
        return f"--{self.short or self.key}"

    @property
    def resumable(self) -> bool:
        return bool(self.field.metadata.get("resumable"))


def config_flags() -> list[ConfigFlag]:
    """A flag for every field of every section of :class:`TrainConfig`, in schema order."""
    flags = []
    for sec in dataclasses.fields(TrainConfig):
        if not dataclasses.is_dataclass(sec.default_factory):
            continue  # "preset" has its own flag
        hints = typing.get_type_hints(sec.default_factory)
        flags += [ConfigFlag(sec.name, f, hints[f.name])
                  for f in dataclasses.fields(sec.default_factory)]
    return flags


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """``--preset``, ``--config``, ``--set`` and one flag per configuration field. The help
    shows the schema's defaults, or a preset's when ``--preset NAME`` comes before ``--help``."""
    g = p.add_argument_group("configuration (each flag overrides the preset and --config)")
    g.add_argument("--preset", choices=list_presets(), action=_PresetHelp,
                   help="a published recipe (before --help: the help shows its values)")
    g.add_argument("--config", metavar="FILE.yaml", help="YAML with any config sections")
    g.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any config value (repeatable), e.g. --set optim.nesterov=true")
    every = p.add_argument_group("every other configuration key (YAML values, as in --set)")
    for flag in config_flags():
        _add_flag(g if flag.short else every, flag)


def given_flags(args: argparse.Namespace) -> list[ConfigFlag]:
    """The configuration flags present on the command line."""
    return [f for f in config_flags() if hasattr(args, f.key)]


def apply_flags(cfg: TrainConfig, args: argparse.Namespace,
                flags: list[ConfigFlag] | None = None) -> TrainConfig:
    """``cfg`` with the value of every given flag (or of ``flags``) applied."""
    for flag in given_flags(args) if flags is None else flags:
        cfg = config_from_dict({flag.section: {flag.field.name: getattr(args, flag.key)}}, cfg,
                               flag.option)
    return cfg


def field_choices(cls: type, name: str) -> tuple[Any, ...] | None:
    """The values the ``Literal`` field ``name`` of the dataclass ``cls`` allows."""
    return choices(typing.get_type_hints(cls)[name])


def choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal`` annotation (optionally ``| None``) allows."""
    literals = [a for a in (annotation, *typing.get_args(annotation))
                if typing.get_origin(a) is Literal]
    return typing.get_args(literals[0]) if literals else None


_DEFAULT = "\0default\0"  # where a flag's help shows its default


def _add_flag(group: argparse._ArgumentGroup, flag: ConfigFlag) -> None:
    meta = flag.field.metadata
    text = meta["help"].replace("%", "%%")
    common = {"dest": flag.key, "default": argparse.SUPPRESS}
    if flag.short and flag.annotation is bool:
        value = not flag.short.startswith("no-")
        group.add_argument(flag.option, action="store_true" if value else "store_false",
                           help=f"{'' if value else 'no '}{text} ({flag.key}={_yaml(value)})",
                           **common)
        return
    typed = _typed(meta, flag.annotation)
    if flag.short and (meta["parse"] or typed["type"] in (int, float, str)):  # a plain flag
        action = group.add_argument(flag.option, **typed,
                                    help=f"{text} ({flag.key}, default {_DEFAULT})", **common)
    elif typing.get_origin(_optional_of(flag.annotation)) in (list, tuple):
        action = group.add_argument(
            flag.option, type=_yaml_value, nargs="+", action=_ListValue, metavar="VALUE",
            help=f"{text}: values, or one YAML list (default {_DEFAULT})", **common)
    else:  # a YAML value, as in --set
        allowed = typed["choices"]
        action = group.add_argument(
            flag.option, type=_yaml_value,
            metavar="{" + ",".join(map(str, allowed)) + "}" if allowed else
            _metavar(flag.annotation), help=f"{text} (default {_DEFAULT})", **common)
    action.help_template = action.help
    _show_default(action, _field_default(flag.field))


def _typed(meta: Any, annotation: Any) -> dict[str, Any]:
    """``type``, ``choices`` and ``metavar`` of a typed flag for a schema field."""
    allowed = choices(annotation)
    parse = meta["parse"] or (type(allowed[0]) if allowed else _optional_of(annotation))
    return {"type": parse, "choices": allowed,
            "metavar": meta["metavar"] or (None if allowed else _metavar(parse))}


def _field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _show_default(action: argparse.Action, value: Any) -> None:
    action.help = action.help_template.replace(_DEFAULT, "none" if value is None else
                                               _yaml(value).replace("%", "%%"))


class _PresetHelp(argparse.Action):
    """``--preset NAME``: stores the name, and makes the help show that preset's values."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        cfg = preset(values)
        flags = {f.key: f for f in config_flags()}
        for action in parser._actions:
            flag = flags.get(action.dest)
            if flag is not None and hasattr(action, "help_template"):
                _show_default(action, getattr(getattr(cfg, flag.section), flag.field.name))


def add_section_flags(p: argparse.ArgumentParser, cls: type, names: tuple[str, ...], *,
                      defaults: dict[str, Any] | None = None,
                      default_text: dict[str, str] | None = None,
                      required: tuple[str, ...] = ()) -> None:
    """Flags for the fields ``names`` of the :func:`option` dataclass ``cls`` (a command's own
    section, e.g. :class:`InferenceConfig`, or a few :class:`DataConfig` fields): the flag name,
    help, type, choices and default come from the schema; ``defaults`` replaces a default for
    this command, ``default_text`` says what an unset (``None``) default means, and ``required``
    names the flags the command cannot go without."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = fields[name]
        meta = f.metadata
        default = (defaults or {}).get(name, _field_default(f))
        shown = (default_text or {}).get(name) or _shown(default)
        text = meta["help"] if name in required or "(default" in meta["help"] else \
            f"{meta['help']} (default: {shown})"
        text = text.replace("%", "%%")
        option = f"--{meta['flag'] or name.replace('_', '-')}"
        annotation = hints[name]
        if _optional_of(annotation) is bool:
            p.add_argument(option, dest=name, action="store_true", default=default, help=text)
            continue
        if typing.get_origin(annotation) is list:  # --models A B, or --set X --set Y
            (item,) = typing.get_args(annotation)
            p.add_argument(option, dest=name, nargs="+", action=_Repeated,
                           **_typed(meta, item), default=default, required=name in required,
                           help=text)
            continue
        p.add_argument(option, dest=name, **_typed(meta, annotation), default=default,
                       required=name in required, help=text)


def _shown(default: Any) -> str:
    """A default as a flag's help shows it: lists as the values one would type."""
    if isinstance(default, list):
        return " ".join(map(str, default)) or "none"
    return "none" if default is None else _yaml(default)


def section_from_args(args: argparse.Namespace, cls: type,
                      names: tuple[str, ...] | None = None) -> Any:
    """The ``cls`` section of a command's arguments (validated by ``cls``), from the fields
    ``names`` (default: every field the arguments hold); the others keep their defaults."""
    names = names or tuple(f.name for f in dataclasses.fields(cls))
    return cls(**{k: v for k, v in vars(args).items() if k in names})


class _Repeated(argparse.Action):
    """A list flag of a section: its values replace the default, and a repeated flag adds to
    the values given before it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = getattr(namespace, self.dest)
        setattr(namespace, self.dest, [*([] if given is self.default else given), *values])


class _ListValue(argparse.Action):
    """A list option: ``--data.resize 32 32`` or ``--data.resize [32,32]``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        one_list = len(values) == 1 and isinstance(values[0], list)
        setattr(namespace, self.dest, values[0] if one_list else list(values))


def _optional_of(annotation: Any) -> Any:
    """``X`` of ``X | None``; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        return arms[0] if len(arms) == 1 else annotation
    return annotation


def _yaml_value(text: str) -> Any:
    return parse_assignment(f"v={text}")["v"]


def _yaml(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def _metavar(annotation: Any) -> str:
    annotation = _optional_of(annotation)
    if typing.get_origin(annotation) in (list, tuple):
        return "[...]"
    return {int: "INT", float: "FLOAT", bool: "BOOL", str: "TEXT"}.get(annotation, "VALUE")
