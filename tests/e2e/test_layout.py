"""test_layout -- the shape of src/ that issue 23 asks for: no file over SRC_FILE_MAX lines, no
function over FUNC_MAX lines, no include cycle, and a module's private header (X_priv.h, X_int.h)
included only by that module's own files (X.c, X_*.c)."""
import re

import pytest

import harness

SRC = harness.ROOT / "src"
SRC_FILE_MAX = 1000	# lines of a file in src/
FUNC_MAX = 80		# lines of a function, from its name to its closing brace

# Files over SRC_FILE_MAX that are still to be split, with the work that splits them. strict: the
# marker must go once the file is short enough.
SPLIT_PENDING = {
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
PRIVATE = re.compile(r"^(?P<module>[a-z0-9]+)_(priv|int)\.h$")


def src_files():
    return sorted(p for p in SRC.iterdir() if p.suffix in (".c", ".h"))


def functions(path):
    """(name, lines) of each function defined in path, written as this tree writes them: the
    name at the start of a line, the body's braces alone in column 0."""
    found, start, body = [], None, False
    for i, line in enumerate(path.read_text().split("\n")):
        m = re.match(r"^([A-Za-z_]\w*)\(", line)
        if start is None:
            if m:
                start, name, body = i, m.group(1), False
        elif not body:
            if line == "{":
                body = True
            elif line.rstrip().endswith(";"):
                start = None	# a prototype, not a definition
        elif line == "}":
            found.append((name, i - start + 1))
            start = None
    return found


@pytest.mark.parametrize("path", src_files(), ids=lambda p: p.name)
def test_src_file_is_short(path):
    n = len(path.read_text().splitlines())
    if path.name in SPLIT_PENDING:
        assert n > SRC_FILE_MAX, f"{path.name} has {n} lines now: take it out of SPLIT_PENDING"
        pytest.xfail(SPLIT_PENDING[path.name])
    assert n <= SRC_FILE_MAX, f"{path.name}: {n} lines, more than {SRC_FILE_MAX}"


def test_functions_are_short():
    long = [f"{p.name}:{name} {n} lines" for p in src_files() if p.suffix == ".c"
            for name, n in functions(p) if n > FUNC_MAX]
    assert long == [], long


def test_function_finder_sees_the_functions():
    """The check above looks at something: it finds server_start and server_handler."""
    names = {name for p in SRC.glob("server*.c") for name, _ in functions(p)}
    assert {"server_start", "server_stop", "server_handler"} <= names, names


def includes():
    return {p.name: INCLUDE.findall(p.read_text()) for p in src_files()}


def test_private_headers_stay_in_their_module():
    wrong = []
    for name, incs in includes().items():
        for inc in incs:
            m = PRIVATE.match(inc)
            if m and not re.match(rf"^{m['module']}(_\w+)?\.[ch]$", name):
                wrong.append(f"{name} includes {inc}")
    assert wrong == [], wrong


def test_server_priv_h_is_included_by_server_files_only():
    users = sorted(n for n, incs in includes().items() if "server_priv.h" in incs)
    assert users and all(re.match(r"^server(_\w+)?\.c$", n) for n in users), users
    assert "server.c" in users and "server_request.c" in users, users


def test_no_include_cycle():
    graph = {n: [i for i in incs if (SRC / i).exists()] for n, incs in includes().items()}
    state = {}

    def visit(n, path):
        state[n] = "open"
        for m in graph.get(n, []):
            assert state.get(m) != "open", " -> ".join(path + [m])
            if m not in state:
                visit(m, path + [m])
        state[n] = "done"

    for n in graph:
        if n not in state:
            visit(n, [n])


def code_of(path):
    """path's text without its comments and string literals' contents."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def test_one_upload_model_scans():
    """Issue 23.3: one path from the body to the scan. Outside the scanner module, the scan entry
    points are called from one file only (upload.c: a v2 request is an upload of one file)."""
    callers = sorted(p.name for p in src_files() if p.suffix == ".c" and
                     not p.name.startswith("scanner") and
                     re.search(r"\bscanner_scan\w*\(", code_of(p)))
    assert callers == ["upload.c"], callers


def test_answers_are_written_in_api_c():
    """Both versions' scan answers ({"malware": ...}) are written in api.c alone."""
    writers = sorted(p.name for p in src_files() if '\\"malware\\"' in p.read_text())
    assert writers == ["api.c"], writers
