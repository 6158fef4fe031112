"""Finding the Debian mirror in the host's apt configuration."""

import pytest

from qemu import debian


def write(tmp_path, main=None, parts=()):
    (tmp_path / "sources.list.d").mkdir()
    if main is not None:
        (tmp_path / "sources.list").write_text(main)
    for name, text in parts:
        (tmp_path / "sources.list.d" / name).write_text(text)
    return tmp_path


DEB822 = """Types: deb
# comment
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb
URIs: http://archive.example/debian/ http://second.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def test_deb822_first_enabled_deb_uri_whose_path_ends_in_debian(tmp_path, monkeypatch):
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    apt = write(tmp_path, parts=[("debian.sources", DEB822)])
    assert debian.debian_mirror(apt) == "http://archive.example/debian"


def test_one_line_format_with_options_and_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    main = ("# deb http://commented.example/debian sid main\n"
            "deb [arch=amd64 signed-by=/k.gpg] https://first.example/pub/debian bookworm main\n")
    apt = write(tmp_path, main=main, parts=[("debian.sources", DEB822)])
    assert debian.debian_mirror(apt) == "https://first.example/pub/debian"
    assert "http://commented.example/debian" not in debian.mirror_candidates(apt)


def test_disabled_suffixes_are_ignored(tmp_path, monkeypatch):
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    apt = write(tmp_path, parts=[("x.list.disabled", "deb http://a.example/debian sid main\n"),
                                 ("y.list", "deb http://b.example/debian sid main\n")])
    assert debian.debian_mirror(apt) == "http://b.example/debian"


def test_env_override_and_missing_mirror(tmp_path, monkeypatch):
    apt = write(tmp_path, parts=[("n.sources", "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\n")])
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    with pytest.raises(RuntimeError, match=debian.MIRROR_ENV):
        debian.debian_mirror(apt)
    monkeypatch.setenv(debian.MIRROR_ENV, "http://override.example/debian/")
    assert debian.debian_mirror(apt) == "http://override.example/debian"
