"""test_manpage -- docs/clamrest.8 and deploy/systemd/clamrest.env keep up with `clamrest --help`.

Every setting --help lists must be in the man page (flag, variable and default together) and in
the environment file; neither may describe a setting clamrest no longer has.
"""
import re
import shutil
import subprocess

import pytest

import harness

MAN = harness.ROOT / "docs" / "clamrest.8"
ENV_FILE = harness.ROOT / "deploy" / "systemd" / "clamrest.env"
HELP_LINE = re.compile(r"^\s+--(?P<flag>[a-z0-9-]+)\s+(?P<env>[A-Z0-9_]+)\s+(?P<help>.*?)"
                       r"(?:\s+\[(?P<default>[^\]]*)\])?$")


def settings():
    out = subprocess.run([harness.BIN, "--help"], capture_output=True, text=True, check=True).stdout
    found = [m.groupdict() for m in map(HELP_LINE.match, out.splitlines()) if m]
    assert len(found) >= 20, out
    return found


def rendered():
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (make deps)")
    r = subprocess.run(["groff", "-man", "-ww", "-Tascii", "-P-cbou", str(MAN)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    return r.stdout


def entries(text):
    """{flag: text of its entry} from the rendered OPTIONS section."""
    options = text.split("\nOPTIONS\n", 1)[1].split("\nCOMMANDS\n", 1)[0]
    found, flag = {}, None
    for line in options.splitlines():
        m = re.match(r"^ {7}--([a-z0-9-]+)", line)
        if m:
            flag = m.group(1)
            found[flag] = line
        elif flag and (line.startswith(" " * 14) or not line.strip()):
            found[flag] += " " + line.strip()
        else:
            flag = None
    return {k: " ".join(v.split()) for k, v in found.items()}


def test_man_page_renders_without_warnings():
    text = rendered()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENDPOINTS", "SIGNALS", "FILES",
                    "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert f"\n{section}\n" in text, section


def test_every_setting_is_in_the_man_page():
    doc = entries(rendered())
    for s in settings():
        entry = doc.get(s["flag"])
        assert entry, f"--{s['flag']} is not described in {MAN.name}"
        head = entry.split(",", 1)[1] if "," in entry else ""
        assert head.split()[0] == s["env"], f"--{s['flag']}: entry starts {entry[:60]!r}"
        if s["default"]:
            assert f"Default: {s['default']}" in entry, \
                f"--{s['flag']}: default {s['default']} not in: {entry}"
        else:
            assert "Default:" in entry or "No default" in entry, entry


def test_man_page_describes_no_unknown_setting():
    known = {s["flag"] for s in settings()} | {"help", "version"}
    stale = set(entries(rendered())) - known
    assert not stale, f"{MAN.name} describes settings clamrest does not have: {stale}"


def test_every_setting_is_in_the_env_file():
    text = ENV_FILE.read_text()
    listed = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, re.M))
    names = {s["env"] for s in settings()}
    assert names - listed == set(), f"missing from {ENV_FILE.name}: {names - listed}"
    assert listed - names == set(), f"unknown in {ENV_FILE.name}: {listed - names}"
    # Every assignment that is not commented out is one clamrest accepts as it stands.
    active = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, re.M))
    for name, value in active.items():
        assert name in names, name
