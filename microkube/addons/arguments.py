"""Addon arguments on the command line, in both spellings users know.

``dns:1.1.1.1,8.8.8.8`` (MicroK8s's form: the value of the positional
argument, or ``key=value`` pairs) and ``dns --upstream 1.1.1.1``. The words
after ``enable`` are split into requests, one per addon, and every value is
checked before anything is applied.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from microkube.addons.ipranges import parse_ranges
from microkube.addons.repository import AddonSpec, ArgumentSpec
from microkube.errors import UsageError

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_KEY_VALUE = re.compile(r"^[a-z][a-z0-9-]*=")


@dataclass
class Request:
    """One addon named on the command line, with the arguments given for it."""

    addon: AddonSpec
    word: str  # as the user typed it
    given: dict[str, str | bool] = field(default_factory=dict)  # raw values by argument name
    values: dict[str, Any] = field(default_factory=dict)  # checked, with defaults


class HelpRequested(Exception):
    """``microkube enable ADDON --help``: show that addon's arguments."""

    def __init__(self, addon: AddonSpec) -> None:
        super().__init__(addon.name)
        self.addon = addon


def parse(
    tokens: Sequence[str],
    find: Callable[[str], AddonSpec],
    disable: bool = False,
) -> list[Request]:
    """Split ``tokens`` into requests and check every value; one UsageError line otherwise."""
    requests: list[Request] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.startswith("-"):
            if not requests:
                raise UsageError(f"option {tok} comes before any addon name")
            req = requests[-1]
            if tok in ("-h", "--help"):
                raise HelpRequested(req.addon)
            name, eq, value = tok[2:].partition("=")
            if not tok.startswith("--") or not name:  # '-x', '--', '--=1'
                raise UsageError(f"{req.word}: '{tok}' is not an option (--name or --name=value)")
            spec = _spec(req, name, disable)
            if spec.is_flag:
                if eq:
                    raise UsageError(f"{req.word}: --{spec.name} is a flag and takes no value")
                _give(req, spec, True)
                continue
            if not eq:
                if i >= len(tokens) or tokens[i].startswith("--"):
                    raise UsageError(f"{req.word}: --{spec.name} needs a value")
                value = tokens[i]
                i += 1
            _give(req, spec, value)
            continue
        word, colon, rest = tok.partition(":")
        if not word:
            raise UsageError(f"'{tok}' is not an addon name")
        req = Request(addon=find(word), word=word)
        if any(r.addon == req.addon for r in requests):
            raise UsageError(f"{word} is named twice")
        requests.append(req)
        if colon:
            _colon_form(req, rest, disable)
    for req in requests:
        req.values = check(req, disable)
    return requests


def _specs(addon: AddonSpec, disable: bool) -> tuple[ArgumentSpec, ...]:
    return addon.disable_arguments if disable else addon.arguments


def _spec(req: Request, name: str, disable: bool) -> ArgumentSpec:
    specs = _specs(req.addon, disable)
    for s in specs:
        if s.name == name:
            return s
    verb = "disable" if disable else "enable"
    if not specs:
        raise UsageError(f"{req.word} takes no arguments on {verb} (got --{name})")
    near = difflib.get_close_matches(name, [s.name for s in specs], n=1)
    hint = f"; did you mean --{near[0]}?" if near else \
        f"; it takes {', '.join('--' + s.name for s in specs)}"
    raise UsageError(f"{req.word}: unknown option --{name}{hint}")


def _give(req: Request, spec: ArgumentSpec, value: str | bool) -> None:
    if spec.name in req.given:
        raise UsageError(f"{req.word}: --{spec.name} is given twice")
    req.given[spec.name] = value


def _colon_form(req: Request, rest: str, disable: bool) -> None:
    """'1.1.1.1,8.8.8.8' for the positional argument, or 'key=value,key=value'."""
    if not rest:
        raise UsageError(f"{req.word}: nothing after ':'")
    specs = _specs(req.addon, disable)
    positional = next((s for s in specs if s.positional), None)
    if not _KEY_VALUE.match(rest):
        if positional is None:
            raise UsageError(f"{req.word}: expected key=value after ':' "
                             f"({req.word} has no positional argument)")
        _give(req, positional, rest)
        return
    key: str | None = None
    pairs: dict[str, str] = {}
    for piece in rest.split(","):
        if "=" in piece and _KEY_VALUE.match(piece):
            key, value = piece.split("=", 1)
            if key in pairs:
                raise UsageError(f"{req.word}: '{key}' is given twice")
            pairs[key] = value
        elif key is not None:
            pairs[key] += "," + piece  # a list value: 'upstream=1.1.1.1,8.8.8.8'
    for key, value in pairs.items():
        spec = _spec(req, key, disable)
        if spec.is_flag:
            if value.lower() not in ("true", "false", "yes", "no"):
                raise UsageError(f"{req.word}: {key} is a flag: use {key}=true or leave it out")
            _give(req, spec, value.lower() in ("true", "yes"))
        else:
            _give(req, spec, value)


def check(req: Request, disable: bool = False) -> dict[str, Any]:
    """Every argument's checked value (defaults filled in)."""
    values: dict[str, Any] = {}
    for spec in _specs(req.addon, disable):
        raw = req.given.get(spec.name, spec.default)
        if raw is None:
            values[spec.name] = False if spec.is_flag else None
            continue
        try:
            values[spec.name] = convert(spec, raw)
        except ValueError as e:
            raise UsageError(f"{req.word}: --{spec.name}: {e}") from None
    return values


def convert(spec: ArgumentSpec, raw: str | bool | int) -> Any:
    """One value, checked against its type; ValueError says what is wrong."""
    if spec.is_flag:
        return bool(raw)
    text = str(raw).strip()
    if spec.type == "ip-list":
        items = [p.strip() for p in text.split(",")]
        if not text or not all(items):
            raise ValueError(f"'{text}' is not a comma-separated list of IP addresses")
        return [_ip_port(p) for p in items]
    if spec.type == "ip-ranges":
        return [r.text for r in parse_ranges(text)]
    if spec.type == "quantity":
        if not _QUANTITY.match(text):
            raise ValueError(f"'{text}' is not a size (e.g. 20Gi)")
        return text
    if spec.type == "secret-ref":
        ns, slash, name = text.partition("/")
        if not slash or not _NAME.match(ns) or not _NAME.match(name):
            raise ValueError(f"'{text}' is not NAMESPACE/SECRET")
        return text
    if spec.type == "choice":
        if text not in spec.choices:
            raise ValueError(f"'{text}' is not one of {', '.join(spec.choices)}")
        return text
    if spec.type == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number") from None
    if not text:
        raise ValueError("empty value")
    return text


def _ip_port(text: str) -> str:
    """'1.1.1.1', '1.1.1.1:5353' or '[::1]:53', normalised; ValueError otherwise."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"'{text}' is not an IP address") from None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"'{text}' has no valid port")
        return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    return str(ip)


def usage(addon: AddonSpec, disable: bool = False) -> str:
    """The per-addon help text (``microkube enable dns --help``)."""
    verb = "disable" if disable else "enable"
    specs = _specs(addon, disable)
    lines = [f"Usage: microkube {verb} {addon.name} [OPTIONS]", "",
             f"  {addon.description} ({addon.ref} {addon.version})"]
    if addon.aliases:
        lines.append(f"  Also called: {', '.join(addon.aliases)}")
    if addon.requires and not disable:
        lines.append(f"  Enables first: {', '.join(addon.requires)}")
    positional = next((s for s in specs if s.positional), None)
    if positional:
        lines.append(f"  Short form: microkube {verb} {addon.name}:{_metavar(positional)}")
    lines.append("")
    if not specs:
        lines.append(f"  {addon.name} takes no options on {verb}.")
    else:
        lines.append("Options:")
        for s in specs:
            left = f"--{s.name}" if s.is_flag else f"--{s.name} {_metavar(s)}"
            default = "" if s.default in (None, False) else f" [default: {s.default}]"
            lines.append(f"  {left:<34} {s.help}{default}")
    return "\n".join(lines) + "\n"


def _metavar(spec: ArgumentSpec) -> str:
    if spec.metavar:
        return spec.metavar
    return {"ip-list": "IP[,IP...]", "ip-ranges": "FIRST-LAST|CIDR[,...]", "quantity": "SIZE",
            "secret-ref": "NAMESPACE/SECRET",
            "choice": "|".join(spec.choices), "int": "N"}.get(spec.type, "VALUE")
