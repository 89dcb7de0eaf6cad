"""tshoot.cli.parsing: the plain-case parser reads command lines exactly as argparse does, and hands
everything else to argparse (help, abbreviations, errors)."""

import pytest

from tshoot.cli.parsing import Parser, _Argparse
from tshoot.maps import MAPS


def declared(cmap) -> Parser:
    parser = Parser(prog=f"tshoot key {cmap.short}")
    parser.add_argument("--cilium-version", metavar="X.Y[.Z]")
    cmap.add_key_arguments(parser)
    parser.add_argument("--bpftool", action="store_true")
    return parser


SAMPLES = {
    "ipcache": [["10.0.1.110"], ["10.0.0.0/8", "--cluster-id", "3"], ["fd00::1", "--cluster-id=7", "--bpftool"]],
    "lxc": [["10.0.1.110"], ["--cilium-version", "1.9", "10.0.1.110", "--bpftool"]],
    "lb4-services": [["10.32.0.10:53/udp"], ["10.32.0.10:53", "--slot", "2", "--scope", "internal"]],
    "ct4": [["10.0.0.1:40000", "10.0.0.2:80", "--proto", "tcp", "--direction", "egress"]],
    "policy": [["--identity", "53731", "--proto", "tcp", "--port", "80", "--endpoint", "2006"],
               ["--identity", "world", "--direction", "egress"]],
    "lb4-backends": [["6"]],
    "tunnel": [["10.0.1.0"]],
}


@pytest.mark.parametrize("short, argv", [(m, a) for m, samples in SAMPLES.items() for a in samples])
def test_plain_command_lines_parse_as_argparse_parses_them(short, argv):
    parser = declared(next(m for m in MAPS if m.short == short))
    assert vars(parser._plain(argv)) == vars(parser.argparse().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["--help"], ["10.0.1.110", "--clus", "3"], ["10.0.1.110", "--cluster-id"], ["10.0.1.110", "--cluster-id", "x"],
    ["10.0.1.110", "extra"], [], ["--", "10.0.1.110"], ["10.0.1.110", "--bpftool=yes"],
])
def test_anything_else_goes_to_argparse(argv):
    parser = declared(next(m for m in MAPS if m.short == "ipcache"))
    with pytest.raises(_Argparse):
        parser._plain(argv)


def test_repeated_options_append_as_argparse_does():
    parser = Parser(prog="tshoot map dump")
    parser.add_argument("--filter", action="append", metavar="EXPR")
    parser.add_argument("--limit", type=int)
    for argv in ([], ["--filter", "a=1"], ["--filter", "a=1", "--filter=b~2", "--limit", "5"]):
        assert vars(parser._plain(argv)) == vars(parser.argparse().parse_args(argv))


def test_argparse_still_accepts_what_only_it_understands():
    parser = declared(next(m for m in MAPS if m.short == "ipcache"))
    assert parser.parse_args(["10.0.1.110", "--clus", "3"]).cluster_id == 3  # an abbreviation
