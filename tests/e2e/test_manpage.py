"""test_manpage -- the settings table of docs/CONFIGURATION.md, docs/clamrest.8 and
deploy/systemd/clamrest.env keep up with `clamrest --help` (the table in src/config.c).

Every setting --help lists must be in each of them with its variable, flag, default and range (a
number's "(min-max)" from --help): the man page says "Default: X" and "Range: MIN to MAX", the
settings table's row has `X` and (MIN-MAX) in its default column, the environment file has #VAR=X
under a comment that gives (MIN-MAX). None may describe a setting clamrest no longer has. A default or
range changed in config.c without the docs fails here.
"""
import re
import shutil
import subprocess

import pytest

import harness

MAN = harness.ROOT / "docs" / "clamrest.8"
ENV_FILE = harness.ROOT / "deploy" / "systemd" / "clamrest.env"
SETTINGS_DOC = harness.ROOT / "docs" / "CONFIGURATION.md"
UNIT = harness.ROOT / "deploy" / "systemd" / "clamrest.service"
HELP_LINE = re.compile(r"^\s+--(?P<flag>[a-z0-9-]+)\s+(?P<env>[A-Z0-9_]+)\s+(?P<help>.*?)"
                       r"(?:\s+\[(?P<default>[^\]]*)\])?"
                       r"(?:\s+\((?:(?P<min>[0-9]+)-(?P<max>[0-9]+)|(?P<bool>yes\|no))\))?$")


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
        if s["min"] is not None:
            assert f"Range: {s['min']} to {s['max']}" in entry, \
                f"--{s['flag']}: range {s['min']} to {s['max']} not in: {entry}"
        assert len(re.findall(r"Range: ", entry)) <= 1, entry


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


def test_help_gives_every_number_a_range():
    for s in settings():
        if s["bool"]:
            assert s["default"] in ("yes", "no"), s
        elif s["default"] and s["default"].isdigit():
            assert s["min"] is not None, f"--{s['flag']}: a number without a range in --help"


def table_rows():
    """{VAR: (flags cell, default cell, meaning cell)} of docs/CONFIGURATION.md's settings table (the
    text before its first section)."""
    text = SETTINGS_DOC.read_text()
    assert text.startswith("# Configuration\n"), text[:80]
    table = text.split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        for var in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            rows[var] = cells[1:]
    return rows


def test_every_setting_is_in_the_docs_table():
    rows = table_rows()
    for s in settings():
        row = rows.get(s["env"])
        assert row, f"{s['env']} has no row in {SETTINGS_DOC.name}'s settings table"
        flags, default, _ = row
        assert f"`--{s['flag']}`" in flags, f"{s['env']}: flag --{s['flag']} not in {flags!r}"
        if s["default"]:
            assert f"`{s['default']}`" in default, \
                f"{s['env']}: {SETTINGS_DOC.name} default {default!r}, --help says {s['default']}"
        if s["min"] is not None:
            assert f"({s['min']}-{s['max']})" in default, \
                f"{s['env']}: {SETTINGS_DOC.name} default cell {default!r} lacks the range " \
                f"({s['min']}-{s['max']})"


def test_docs_table_describes_no_unknown_setting():
    stale = set(table_rows()) - {s["env"] for s in settings()}
    assert not stale, f"{SETTINGS_DOC.name}'s settings table lists settings clamrest does not have: {stale}"


def test_env_file_defaults_and_ranges():
    lines = ENV_FILE.read_text().splitlines()
    for s in settings():
        at = [i for i, l in enumerate(lines) if re.match(rf"^#?\s?{s['env']}=", l)]
        assert at, s["env"]
        value = lines[at[0]].split("=", 1)[1]
        # The unit's Environment= lines are the defaults the file's readers get (TMPDIR).
        unit = dict(re.findall(r"^Environment=([A-Z0-9_]+)=(.*)$", UNIT.read_text(), re.M))
        if s["default"] and s["env"] != "APPLICATION_USERS":
            assert value == unit.get(s["env"], s["default"]), \
                f"{ENV_FILE.name}: {s['env']}={value}, --help's default is {s['default']}"
        if s["min"] is not None:
            comment = []
            for line in reversed(lines[:at[0]]):
                if not line.startswith("# ") or re.match(r"^#\s?[A-Z][A-Z0-9_]+=", line):
                    break
                comment.insert(0, line)
            assert f"({s['min']}-{s['max']})" in " ".join(comment), \
                f"{ENV_FILE.name}: the comment above {s['env']} does not give " \
                f"({s['min']}-{s['max']}): {comment}"
