"""test_verdict_place -- where the verdict is decided (issue 23.2): a result is made clean in
src/scanner_verdict.c and nowhere else, the scanner's insides (scanner_priv.h) are included by the
scanner's own files only, scanner.h offers one way to scan, and the include graph has no cycle.

These read the sources, not the binary: they need no server.
"""
import re

import harness

SRC = harness.ROOT / "src"
VERDICT_FILE = "scanner_verdict.c"
PRIV = "scanner_priv.h"


def code(path):
    """The C source of path without comments, string and character literals (kept as "")."""
    text = path.read_text()
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))  # keep line numbers
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sources(*globs):
    for g in globs:
        yield from sorted(SRC.glob(g))


def hits(pattern, files):
    """(file name, line number, line) for each line of code matching pattern."""
    found = []
    for path in files:
        for no, line in enumerate(code(path).splitlines(), 1):
            if re.search(pattern, line):
                found.append((path.name, no, line.strip()))
    return found


# SCAN_CLEAN used as a value (assigned, initialised, returned, passed), not compared or declared.
CLEAN_VALUE = r"(?<![=!]=)(?<![=!]= )(?<!case )\bSCAN_CLEAN\b(?!\s*[=!]=)"


def test_only_the_verdict_file_makes_a_result_clean():
    found = [h for h in hits(CLEAN_VALUE, sources("*.c", "*.h"))
             if not re.search(r"enum\s+scan_verdict\s*\{", h[2])]
    assert found, "no clean verdict at all?"
    elsewhere = [h for h in found if h[0] != VERDICT_FILE]
    assert not elsewhere, f"a result is made clean outside src/{VERDICT_FILE}: {elsewhere}"


def test_the_scanner_sets_verdicts_in_the_verdict_file_only():
    # Any verdict, not only clean: a verdict computed elsewhere in the scanner would be a second
    # place that says when an answer is clean (by choosing it or by choosing not to say malware).
    found = hits(r"(->|\.)verdict\s*=(?!=)", sources("scanner*.c"))
    assert found, "no verdict assigned in the scanner?"
    elsewhere = [h for h in found if h[0] != VERDICT_FILE]
    assert not elsewhere, f"a scan verdict assigned outside src/{VERDICT_FILE}: {elsewhere}"


def test_no_result_is_clean_by_zeroing_it():
    # SCAN_CLEAN is 0: a scan_result built from a zeroed literal would read as clean unless it names
    # another verdict.
    for path in sources("*.c"):
        text = code(path)
        for m in re.finditer(r"\(struct scan_result\)\s*\{([^}]*)\}|struct scan_result\s+\w+\s*=\s*"
                             r"\{([^}]*)\}", text):
            body = m.group(1) if m.group(1) is not None else m.group(2)
            assert re.search(r"\.verdict\s*=\s*SCAN_(MALWARE|ERROR)\b", body), \
                f"{path.name}: {m.group(0)!r} is a clean result"


def test_verdict_file_holds_the_rules():
    text = (SRC / VERDICT_FILE).read_text()
    for fn in ("scanner_verdict", "scanner_verdict_cached", "scanner_skipped"):
        assert re.search(rf"^{fn}\(", text, re.M), fn


def test_scanner_priv_h_is_included_by_the_scanner_only():
    root = harness.ROOT
    includers = []
    for path in [*root.glob("src/*.[ch]"), *root.glob("tests/unit/*.[ch]"), *root.glob("fuzz/*.c"),
                 *root.glob("bench/*.c")]:
        if re.search(rf'^\s*#\s*include\s+"{re.escape(PRIV)}"', path.read_text(), re.M):
            includers.append(path.relative_to(root).as_posix())
    scanner_files = sorted(p.relative_to(root).as_posix()
                           for p in sources("scanner.c", "scanner_*.c"))
    assert sorted(includers) == scanner_files, includers


def test_scanner_h_shows_one_way_to_scan_and_no_internals():
    text = code(SRC / "scanner.h")
    scans = re.findall(r"\bvoid\s+(scanner_scan\w*)\s*\(", text)
    assert scans == ["scanner_scan"], scans
    for internal in ("provisional", "SCANNER_LIMIT_MARGIN", "SCANNER_TMP_LOW_WATER",
                     "SCANNER_EXPANSION_FLOOR", "SCANNER_CLAMAV_FILE_MAX", "<clamav.h>",
                     "struct engine", "scan_state"):
        assert internal not in text.replace('""', ""), internal
    assert "#include <clamav.h>" not in (SRC / "scanner.h").read_text()


def test_include_graph_has_no_cycle():
    graph = {}
    for path in sources("*.c", "*.h"):
        graph[path.name] = set(re.findall(r'^\s*#\s*include\s+"([^"]+)"', path.read_text(), re.M))
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "include cycle: " + " -> ".join(trail + [node])
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])
