"""test_design_doc -- the documents that say where things are keep saying the truth (issue 23).

docs/DESIGN.md's file table names every file of src/ and no file that is not there; tests/README.md
maps every setting of src/config.c's table to the test files that test it, and names only test files
that exist; README.md stays a front door (the two commands first, under 250 lines); and every
relative link of README.md, docs/*.md, tests/README.md and the other folders' READMEs leads to a
file that exists and, for a Markdown file, to a heading it has. Reads files only: no server.
"""
import re

import harness

ROOT = harness.ROOT
DESIGN = ROOT / "docs" / "DESIGN.md"
TESTS_README = ROOT / "tests" / "README.md"
SETTING = re.compile(r'^\s*\{\s*"([A-Z][A-Z0-9_]+)",\s*"([a-z0-9-]+)",\s*CT_', re.M)


def section(text, heading):
    """The text under a "## heading", up to the next heading of level 1 or 2."""
    start = text.index(f"\n## {heading}\n")
    rest = text[start + len(heading) + 5:]
    end = re.search(r"^#{1,2} ", rest, re.M)
    return rest[:end.start()] if end else rest


def table_first_cells(text):
    """The first cell of every row of the Markdown tables in text, header and rule rows left out."""
    cells = []
    for line in text.splitlines():
        if not line.startswith("|") or re.match(r"^\|[-| ]+\|$", line):
            continue
        cells.append(line.strip("|").split("|")[0].strip())
    return cells[1:] if cells else cells


def design_files():
    names = set()
    for cell in table_first_cells(section(DESIGN.read_text(), "Files")):
        found = re.findall(r"`([A-Za-z0-9_]+\.[ch])`", cell)
        assert found, f"a row of {DESIGN.name}'s file table names no file: {cell!r}"
        names.update(found)
    return names


def src_files():
    return {p.name for p in (ROOT / "src").iterdir() if p.suffix in (".c", ".h")}


def test_design_table_names_every_file_of_src():
    missing = src_files() - design_files()
    assert not missing, f"files of src/ without a row in {DESIGN.name}'s file table: {sorted(missing)}"


def test_design_table_names_only_files_that_exist():
    stale = design_files() - src_files()
    assert not stale, f"{DESIGN.name}'s file table names files src/ does not have: {sorted(stale)}"


def config_settings():
    found = SETTING.findall((ROOT / "src" / "config.c").read_text())
    assert len(found) >= 40, found     # the table's shape changed: fix SETTING
    return [env for env, _ in found]


def test_tests_readme_maps_every_setting():
    table = section(TESTS_README.read_text(), "Where each setting is tested")
    rows = {}
    for line in table.splitlines():
        if line.startswith("| `"):
            cells = line.strip("|").split("|")
            for var in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                rows[var] = cells[1]
    for env in config_settings():
        assert env in rows, f"{env} (src/config.c) has no row in {TESTS_README}'s settings map"
        assert re.search(r"`[a-z0-9_/]+/test_[a-z0-9_]+\.(py|c)`", rows[env]), \
            f"{env}: its row names no test file: {rows[env]!r}"
    stale = set(rows) - set(config_settings())
    assert not stale, f"{TESTS_README}'s settings map lists settings clamrest does not have: {stale}"


def test_tests_readme_names_only_files_that_exist():
    text = TESTS_README.read_text()
    named = set(re.findall(r"`((?:e2e|unit|libclamav|engine|container|k8s|fuzz)/[A-Za-z0-9_]+\.(?:py|c))`",
                           text))
    assert len(named) > 40, named
    missing = sorted(p for p in named
                     if not (ROOT / "tests" / p).exists() and not (ROOT / p).exists())
    assert not missing, f"{TESTS_README} names files that do not exist: {missing}"


def test_every_e2e_test_file_is_in_the_feature_map():
    text = section(TESTS_README.read_text(), "Where each feature is tested")
    files = {p.name for p in (ROOT / "tests" / "e2e").glob("test_*.py")}
    missing = sorted(f for f in files if f"e2e/{f}" not in text)
    assert not missing, f"e2e test files no feature of {TESTS_README} names: {missing}"


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 250, f"README.md has {len(lines)} lines: move the detail to docs/"
    head = "\n".join(lines[:10])
    assert re.search(r"^make run\b", head, re.M) and re.search(r"^make test\b", head, re.M), head


def slug(heading):
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    out, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^#{1,6} (.*)", line)):
            out.add(slug(m.group(1)))
    return out


def test_document_links_resolve():
    docs = [ROOT / "README.md", TESTS_README] + sorted((ROOT / "docs").glob("*.md")) + \
        [ROOT / d / "README.md" for d in ("deploy", "perf", "bench", "client-examples",
                                          "third_party/libclamav")]
    bad = []
    for doc in docs:
        text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                bad.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not bad, "\n".join(bad)
