"""Addon arguments: both spellings, checked values, one clear line for anything wrong."""

from __future__ import annotations

import pytest

from microkube.addons import arguments
from microkube.addons.arguments import HelpRequested
from microkube.addons.catalog import Catalog
from microkube.addons.repository import load
from microkube.errors import UsageError
from microkube.paths import CHECKOUT

CATALOG = Catalog((load(CHECKOUT / "addons", "core"),))


def parse(*tokens: str, disable: bool = False) -> dict[str, dict[str, object]]:
    reqs = arguments.parse(tokens, CATALOG.find, disable=disable)
    return {r.addon.name: r.values for r in reqs}


def test_colon_form_sets_the_positional_argument() -> None:
    assert parse("dns:1.1.1.1,8.8.8.8") == {"dns": {"upstream": ["1.1.1.1", "8.8.8.8"]}}


def test_option_form_and_several_addons() -> None:
    got = parse("dns", "--upstream", "10.0.0.1:5353", "ingress", "registry", "--size=40Gi")
    assert got["dns"] == {"upstream": ["10.0.0.1:5353"]}
    assert got["ingress"] == {"default-ssl-certificate": None}
    assert got["registry"] == {"size": "40Gi", "storageclass": "microkube-hostpath"}


def test_key_value_colon_form_with_list_values() -> None:
    assert parse("dns:upstream=1.1.1.1,9.9.9.9") == {"dns": {"upstream": ["1.1.1.1", "9.9.9.9"]}}
    got = parse("registry:size=5Gi,storageclass=fast")
    assert got["registry"] == {"size": "5Gi", "storageclass": "fast"}
    assert parse("ingress:default-ssl-certificate=default/tls")["ingress"] == {
        "default-ssl-certificate": "default/tls"}


def test_ipv6_upstream_and_port() -> None:
    assert parse("dns", "--upstream", "[2001:db8::1]:53,2001:db8::2") == {
        "dns": {"upstream": ["[2001:db8::1]:53", "2001:db8::2"]}}


def test_aliases_and_repository_prefix() -> None:
    assert list(parse("storage")) == ["hostpath-storage"]
    assert list(parse("core/dns")) == ["dns"]


def test_disable_flags() -> None:
    assert parse("storage", "--destroy-storage", disable=True) == {
        "hostpath-storage": {"destroy-storage": True}}
    assert parse("hostpath-storage", disable=True) == {"hostpath-storage": {"destroy-storage": False}}


@pytest.mark.parametrize(("tokens", "message"), [
    (("dns:1.1.1",), "dns: --upstream: '1.1.1' is not an IP address"),
    (("dns:1.1.1.1:99999",), "has no valid port"),
    (("dns:",), "nothing after ':'"),
    (("dns", "--upstream"), "--upstream needs a value"),
    (("dns", "--upstrem", "1.1.1.1"), "unknown option --upstrem; did you mean --upstream?"),
    (("dns", "--upstream", "1.1.1.1", "--upstream", "8.8.8.8"), "--upstream is given twice"),
    (("--upstream", "1.1.1.1"), "option --upstream comes before any addon name"),
    (("dns", "dns"), "dns is named twice"),
    (("metrics-server", "--foo"), "metrics-server takes no arguments on enable"),
    (("ingress:tls",), "expected key=value after ':'"),
    (("ingress", "--default-ssl-certificate", "nosuch"), "is not NAMESPACE/SECRET"),
    (("registry", "--size", "lots"), "'lots' is not a size"),
    (("dsn",), "unknown addon 'dsn'; did you mean 'dns'?"),
    (("ingres",), "did you mean 'ingress'?"),
    (("metrics",), "did you mean 'metrics-server'?"),
    (("core/dsn",), "core has no addon 'dsn'; did you mean 'core/dns'?"),
    (("elsewhere/dns",), "unknown addon repository 'elsewhere'"),
    # Not options at all (were 'unknown option ----', '---u'): said as given.
    (("dns", "--"), "dns: '--' is not an option (--name or --name=value)"),
    (("dns", "-u", "1.1.1.1"), "dns: '-u' is not an option"),
    (("dns", "--=1.1.1.1"), "dns: '--=1.1.1.1' is not an option"),
])
def test_bad_input_is_one_clear_line(tokens: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(*tokens)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_flag_takes_no_value() -> None:
    with pytest.raises(UsageError, match="is a flag"):
        parse("storage", "--destroy-storage=yes", disable=True)


def test_help_after_an_addon_names_it() -> None:
    with pytest.raises(HelpRequested) as e:
        parse("ingress", "dns", "--help")
    assert e.value.addon.name == "dns"
    text = arguments.usage(e.value.addon)
    assert "microkube enable dns:IP[,IP...]" in text
    assert "--upstream IP[,IP...]" in text


def test_usage_lists_disable_flags_and_requirements() -> None:
    storage = CATALOG.find("storage")
    assert "--destroy-storage" in arguments.usage(storage, disable=True)
    assert "Enables first: core/hostpath-storage" in arguments.usage(CATALOG.find("registry"))


def test_metallb_pool_in_every_spelling() -> None:
    assert parse("metallb:10.64.140.43-10.64.140.49,192.168.1.240/28") == {
        "metallb": {"addresses": ["10.64.140.43-10.64.140.49", "192.168.1.240/28"]}}
    assert parse("metallb", "--addresses", " 10.0.9.1 , fd00::10-fd00::1f") == {
        "metallb": {"addresses": ["10.0.9.1-10.0.9.1", "fd00::10-fd00::1f"]}}
    assert parse("metallb:addresses=10.0.9.0/30,10.0.9.8/30") == {
        "metallb": {"addresses": ["10.0.9.0/30", "10.0.9.8/30"]}}


@pytest.mark.parametrize(("value", "message"), [
    ("10.0.0.20-10.0.0.10", "'10.0.0.20-10.0.0.10' ends before it starts"),
    ("10.0.0.1-fd00::1", "mixes IPv4 and IPv6"),
    ("10.0.0.1-10.0.0", "'10.0.0' is not an IP address"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR"),
    ("10.0.0.5/24", "is not a network address; did you mean 10.0.0.0/24?"),
    ("10.0.0.0/24,10.0.0.100-10.0.0.110", "'10.0.0.0/24' and '10.0.0.100-10.0.0.110' overlap"),
    ("10.0.0.1-10.0.0.5,", "is not a comma-separated list of address ranges"),
    ("127.0.0.10-127.0.0.20", "holds loopback addresses"),
    ("224.0.0.0/28", "holds multicast addresses"),
    ("pool", "'pool' is not an IP address"),
])
def test_bad_metallb_pool_is_one_line(value: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(f"metallb:{value}")
    assert str(e.value).startswith("metallb: --addresses: ")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_metallb_usage_shows_the_short_form() -> None:
    text = arguments.usage(CATALOG.find("metallb"))
    assert "microkube enable metallb:FIRST-LAST|CIDR[,...]" in text
