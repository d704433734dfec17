"""The ``mict`` command line: a thin dispatcher over the command modules in ``mictnet.tools``.

``COMMANDS`` names every command, its one-line help and the module that implements it; only the
chosen command's module is imported. Each module's ``register(subparsers)`` adds its
sub-command(s) and sets ``func`` (called with the parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from . import __version__

# command -> (module in mictnet.tools, help line of `mict --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "train and evaluate MiCT-ResNet-18 on a generated motion dataset (CPU)"),
    "models": ("models_table", "list models with parameters and GFLOPs per clip"),
    "check": ("data_commands", "check a dataset: lists, labels, and that every video opens"),
    "prepare": ("data_commands", "pre-decode every video into resized JPEG frames for faster "
                                 "training"),
    "synth": ("synth", "write the synthetic motion dataset (UCF-101 layout)"),
    "train": ("experiments", "train a model (presets reproduce the published recipes)"),
    "evaluate": ("experiments", "top-1/top-5, per-class accuracy, confusion matrix of a "
                                "checkpoint"),
    "crossval": ("experiments", "train and evaluate on the three official splits: the "
                                "published table"),
    "transfer-study": ("transfer_study", "train on the target directly and via a pre-training "
                                         "source, over splits and seeds: the comparison table"),
    "sweep": ("experiments", "video-level accuracy versus the number of frames"),
    "plot": ("experiments", "training curves (loss, top-1) from metrics.csv"),
    "benchmark": ("benchmark", "parameters, GFLOPs, memory and frames/s of models "
                               "(interleaved runs)"),
    "predict": ("predict", "top actions in video files (and a timeline)"),
    "explain": ("explain", "Grad-CAM over space and time: where and when a video showed its "
                           "action"),
    "export": ("export", "export a checkpoint to ONNX or TorchScript (dynamic time axis), "
                         "verified"),
    "live": ("live", "top actions of a camera, stream or file as they happen (each frame "
                     "computed once)"),
    "serve": ("serve", "a web page and HTTP API that recognise actions in uploaded videos"),
}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help lines end with the option's default unless they name it already (or it is
    empty: ``None``, ``False``, suppressed)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default in (None, False, argparse.SUPPRESS)
                or "default" in text or isinstance(action, argparse._HelpAction)):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})".lstrip()


class CommandParser(argparse.ArgumentParser):
    """A sub-command's parser: defaults shown in ``--help``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


class CommandsAction(argparse._SubParsersAction):
    """The sub-commands: each one's help line (and, unless it has its own, its description) comes
    from ``COMMANDS``."""

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        kwargs.setdefault("help", COMMANDS[name][1])
        if kwargs.get("add_help", True):
            kwargs.setdefault("description", COMMANDS[name][1][0].upper() + COMMANDS[name][1][1:]
                              + ".")
        return super().add_parser(name, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, that command's module registers its full sub-parser and
    every other command is a placeholder that shows its help line."""
    parser = argparse.ArgumentParser(
        prog="mict", description="MiCT-Net action recognition: models, data, training, tools.")
    parser.register("action", "parsers", CommandsAction)
    parser.add_argument("--version", action="version", version=f"mict {__version__}")
    parser.add_argument("-v", "--verbose", "--debug", dest="verbose", action="store_true",
                        help="debug logging, and the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=CommandParser)
    registered = set()
    if command in COMMANDS:
        module = importlib.import_module(f"mictnet.tools.{COMMANDS[command][0]}")
        module.register(subparsers)
        registered = set(subparsers.choices)
        missing = {name for name, (mod, _) in COMMANDS.items()
                   if mod == COMMANDS[command][0]} - registered
        if missing:
            raise RuntimeError(f"mictnet.tools.{COMMANDS[command][0]} did not register "
                               f"{', '.join(sorted(missing))}")
    for name in COMMANDS:
        if name not in registered:
            subparsers.add_parser(name, add_help=False)
    return parser


def _command(argv: list[str]) -> str | None:
    """The first argument that names a command."""
    return next((a for a in argv if a in COMMANDS), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own usage, not the top-level one
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {_message(err)}", file=sys.stderr)
        return 2


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[command]


def _message(err: Exception) -> str:
    """One line naming the path of an ``OSError`` (``FileExistsError: x`` -> ``x: File
    exists``)."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        target = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.filename}{target}: {err.strerror}"
    return str(err)


if __name__ == "__main__":
    sys.exit(main())
