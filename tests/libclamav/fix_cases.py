"""fix_cases.py -- the regression cases of the *fix* patches of third_party/libclamav (01NN-*.patch),
and what they exclude from test_libclamav_diff's comparison of the fixes-only library with Debian's.

A fix patch changes answers on purpose (a crash of the stock library, a member it drops), so the
differential test compares the fixes-only library with Debian's everywhere except on its cases.
To add a fix patch's case, append a FixCase to FIX_CASES:

  patch        the patch's number ("0111"): third_party/libclamav/<patch>-*.patch must exist
  db           {file name: text} of a database folder that shows the bug (NDB/LDB/...);
               None: make-testdb's toy database (EICAR, ClamAV-Test-File)
  files        {name: bytes}: the regression files; the fixes-only and the speed-patched library
               must answer each exactly as `fixed` says ("VIRUS <name>", "CLEAN"; the libclamav
               error/warning count follows in the harness's answer: see scanloop.c)
  fixed        {name: answer without the msg field}
  stock_differs  names among files for which Debian's library must answer otherwise, crash, or,
               run under valgrind, read or write memory it must not: proof that the file
               reproduces the bug; the other files are controls, answered alike
  stock_skip   (database glob, file glob) pairs of test_libclamav_diff's own databases and corpora
               ("eng-macro", "nosec-*", ...) on which Debian's library hits the same bug: left out
               of the stock comparison only (the speed patches are still compared with the fixes)

Keep the files small (they are built here, from bytes, not read from the system, except where
noted) and their names unique (the patch number first).
"""
import dataclasses
import pathlib
import struct

import gen_files

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclasses.dataclass
class FixCase:
    patch: str
    db: dict
    files: dict
    fixed: dict
    stock_differs: set
    stock_skip: list = dataclasses.field(default_factory=list)


def _elf_without_sections():
    d = bytearray(pathlib.Path("/usr/bin/true").read_bytes())
    struct.pack_into("<Q", d, 0x28, 0)           # e_shoff
    struct.pack_into("<HH", d, 0x3C, 0, 0)       # e_shnum, e_shstrndx
    return bytes(d + b"ABCDEFG")


FIX_CASES = [
    # SL+n on an ELF or Mach-O file without sections read sections[-1] of a NULL array (SIGSEGV).
    FixCase(
        patch="0101",
        db={"sl.ndb": "Fix0101.SL.ELF:6:SL+0:41424344454647\n"
                      "Fix0101.SL.MachO:9:SL+0,4096:cccccccc\n"},
        files={"0101-nosec-elf64": _elf_without_sections(),
               "0101-nosec-macho64": gen_files.macho(True, 0, False, b"ABCDEFG"),
               "0101-nosec-macho32-seg": gen_files.macho(False, 0, True),
               "0101-macho64-sections": gen_files.macho(True, 2, True)},
        fixed={"0101-nosec-elf64": "CLEAN", "0101-nosec-macho64": "CLEAN",
               "0101-nosec-macho32-seg": "CLEAN",
               "0101-macho64-sections": "VIRUS Fix0101.SL.MachO.UNOFFICIAL"},
        stock_differs={"0101-nosec-elf64", "0101-nosec-macho64", "0101-nosec-macho32-seg"},
        stock_skip=[("eng-offsets", "nosec-*"), ("eng-all", "nosec-*"), ("eng-same", "nosec-*")],
    ),
    # The macro subsignature's placeholder (ac_mindepth zero bytes) was in the trie: zero runs reached
    # it; groups 1-31 read the multi-part table out of bounds (this one logical signature crashes
    # the stock library on 64 zero bytes), group 0 a foreign offset slot. Macro signatures count
    # the macro check on the anchor's next match, so the control has the anchor twice.
    FixCase(
        patch="0102",
        db={"m.ndb": "Fix0102.G31:0:$31$:%s\n" % gen_files.MACRO_MEMBER[31].hex(),
            "m.ldb": "Fix0102.L31;Engine:51-255,Target:0;0&1;%s;${10-10}31$\n" % gen_files.MACRO_ANCHOR[0].hex()},
        files={"0102-zeros": b"\0" * 64,
               "0102-anchor-member": (gen_files.MACRO_ANCHOR[0] + b"zz" + gen_files.MACRO_MEMBER[31] + b"q" * 12) * 2},
        fixed={"0102-zeros": "CLEAN", "0102-anchor-member": "VIRUS Fix0102.L31.UNOFFICIAL"},
        stock_differs={"0102-zeros"},
        stock_skip=[("eng-macro", "*"), ("eng-all", "*")],
    ),
    # HTML was scanned only normalised (lower case, tags and white space folded): bytes a signature
    # names in the raw file were never matched, nor a zip appended to a page. 0112 adds the raw scan
    # (after the normalised ones). The generated corpus's text files carry "<html>" tokens, so
    # libclamav types them HTML: with the synthetic databases' signatures over their raw bytes
    # (control bytes, upper case) the fixed library finds what Debian's never looked at, and in
    # all-matches mode names a signature twice when both the normalised and the raw page hold it.
    # Nor was an HTML file's own hash (.hdb/.hsb) ever looked up: eng-hash's hash of clam.exe.html
    # matches with 0112 only (in first-match mode clam.exe's hash, inside the page, is named first).
    FixCase(
        patch="0112",
        db={"h.ndb": "Fix0112.Raw:0:*:%s\n" % b"RAWONLY\x7fTOKEN".hex()},
        files={"0112-html-raw": b"<html><body><p>RAWONLY\x7fTOKEN</p></body></html>\n" * 4,
               "0112-text-raw": b"plain text RAWONLY\x7fTOKEN here\n" * 4},
        fixed={"0112-html-raw": "VIRUS Fix0112.Raw.UNOFFICIAL", "0112-text-raw": "VIRUS Fix0112.Raw.UNOFFICIAL"},
        stock_differs={"0112-html-raw"},
        stock_skip=[(d, f) for d in ("mid*", "big*") for f in ("text-*", "mutated-*")] + [("eng-hash", "*.html")],
    ),
]
