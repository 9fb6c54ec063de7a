#!/usr/bin/python3
"""gen_db.py -- seeded signature database for the libclamav differential test.

Usage: gen_db.py OUTDIR NDB LDB [CORPUS_FILE...]
       gen_db.py --engine OUTDIR
       gen_db.py --hash OUTDIR CORPUS_FILE...   (hash signatures of the files: see hashes())

--engine writes one database folder per engine feature the synthetic mix does not reach, aimed at
gen_files.py's files (same byte patterns): OUTDIR/macro (NDB macro-group members $0$..$31$ and
logical signatures with a macro subsignature of every group, among them the issue-20 ones),
OUTDIR/offsets (every offset kind: absolute, shifted, *, EOF-, EP+/-, Sx+, SL+, SE, VI on PE, ELF
and Mach-O targets, in NDB, as LDB subsignatures and on regexes), OUTDIR/yara (string and condition variants),
OUTDIR/bcomp (byte-compare subsignatures), OUTDIR/same (several signatures with the same bytes and
different offsets, targets and formats), OUTDIR/bm (plain-byte signatures, which libclamav's
Boyer-Moore matcher takes: 3 to 5 bytes, identical bytes, one hash slot, long ones, with offsets, on
every target), OUTDIR/bmlong (only long plain-byte signatures: the matcher's skip over them) and
OUTDIR/all (all of them in one engine).

OUTDIR/diff.ndb: NDB body signatures of pseudo-random bytes using '??', '{n-m}', '*', alternatives
'(aa|bb)' and EP+/EOF- offsets; OUTDIR/diff.ldb: LDB logical signatures with 1-5 subsignatures,
expressions with &, |, =, >, <, 2% PCRE subsignatures. Planted among them (so that files of the
corpus are detected, often by several signatures at once, and the first one in load order wins):
signatures built from slices of the corpus files, and logical signatures true with no subsignature
matched, limited by FileSize. Same arguments, corpus and DIFF_SEED (environment), same bytes.
"""
import os
import random
import sys

import gen_files

SEED = 0x6C6962636C616D + int(os.environ.get("DIFF_SEED", "0"))  # "libclam" (+ DIFF_SEED)


def rhex(rng, n):
    return "".join("%02x" % rng.randrange(256) for _ in range(n))


def body(rng):
    parts = [rhex(rng, rng.randint(4, 8))]
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(5)
        if k == 0:
            parts.append("??" * rng.randint(1, 3))
        elif k == 1:
            lo = rng.randint(0, 8)
            parts.append("{%d-%d}" % (lo, lo + rng.randint(1, 16)))
        elif k == 2:
            parts.append("*")
        elif k == 3:
            parts.append("(%s|%s)" % (rhex(rng, 2), rhex(rng, 2)))
        parts.append(rhex(rng, rng.randint(3, 6)))
    return "".join(parts)


def offset(rng, target):
    k = rng.randrange(10 if target else 9)
    if k < 6:
        return "*"
    if k < 8:
        return "0"
    if k == 8:
        return "EOF-%d" % rng.randint(16, 4096)
    return "EP+%d" % rng.randint(0, 512)


def expr(rng, n):
    if n == 1:
        return rng.choice(["0", "0>1", "0=1"])
    ids = list(range(n))
    op = rng.choice(["&", "|", "&"])
    e = op.join(str(i) for i in ids)
    return rng.choice(["%s", "(%s)", "(%s)>1"]) % e if op == "|" else e


def slices(rng, path, count):
    try:
        data = open(path, "rb").read(1 << 20)
    except OSError:
        return []
    if len(data) < 64:
        return [data.hex()] if len(data) >= 8 else []
    out = []
    for _ in range(count):
        n = rng.randint(12, 24)
        at = rng.randrange(0, len(data) - n)
        out.append(data[at:at + n].hex())
    return out


def main():
    outdir, n_ndb, n_ldb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    corpus = sorted(sys.argv[4:])
    rng = random.Random(SEED)
    ndb, ldb = [], []
    for i in range(n_ndb):
        target = rng.choice([0, 0, 0, 1, 6])
        ndb.append("Diff.Ndb.%d:%d:%s:%s\n" % (i, target, offset(rng, target), body(rng)))
    for i in range(n_ldb):
        n = rng.randint(1, 5)
        subs = []
        for _ in range(n):
            if rng.randrange(50) == 0:
                subs.append("0/%s[0-9]{2,}%s/" % (rhex(rng, 3), rhex(rng, 2)))
            else:
                subs.append(body(rng))
        if subs[0].startswith("0/"):
            subs[0] = body(rng)  # a PCRE subsignature needs a trigger before it
        ldb.append("Diff.Ldb.%d;Engine:51-255,Target:%d;%s;%s\n" % (i, rng.choice([0, 0, 1]), expr(rng, n), ";".join(subs)))
    # Planted: corpus slices in both formats, and "true with nothing matched" lsigs.
    prng = random.Random(SEED + 1)
    for j, path in enumerate(corpus):
        sl = slices(prng, path, 3)
        if not sl:
            continue
        at = prng.randrange(len(ndb) + 1)
        ndb.insert(at, "Diff.Planted.Ndb.%d:0:*:%s\n" % (j, sl[0]))
        if len(sl) >= 3:
            e = prng.choice(["0&1&2", "(0|1)&2", "0|1|2", "(0&1)|2", "(0|1|2)>1", "0&(1|2)"])
            at = prng.randrange(len(ldb) + 1)
            ldb.insert(at, "Diff.Planted.Ldb.%d;Engine:51-255,Target:0;%s;%s\n" % (j, e, ";".join(sl[:3])))
    for k in range(20):
        # The first ones cover sizes of the generated corpus (68, 500, 4096 bytes), so these are hit.
        lo = [68, 500, 4096][k] if k < 3 else prng.randint(0, 20000)
        at = prng.randrange(len(ldb) + 1)
        ldb.insert(at, "Diff.Always.%d;Engine:51-255,Target:0,FileSize:%d-%d;0=0|1;%s;%s\n"
                   % (k, lo, lo + (0 if k < 3 else prng.randint(0, 300)), rhex(prng, 8), rhex(prng, 8)))
    os.makedirs(outdir, exist_ok=True)
    for name, lines in (("diff.ndb", ndb), ("diff.ldb", ldb)):
        with open(os.path.join(outdir, name), "w", encoding="ascii") as f:
            f.writelines(lines)


def hx(b):
    return b.hex()


def engine_macro():
    ndb = ["Mac.G1:0:$1$:585858\n"]  # the issue's three signatures (0001's bug)
    ldb = ["Mac.ChkA;Engine:51-255,Target:0;0>0&1=2;41414141;${6-6}1$\n",
           "Mac.ChkB;Engine:51-255,Target:0;0>0&1=1;41414141;${6-6}1$\n"]
    for g in range(32):
        ndb.append("Diff.Eng.MacG%d:0:$%d$:%s\n" % (g, g, hx(gen_files.MACRO_MEMBER[g])))
        a = hx(gen_files.MACRO_ANCHOR[g % len(gen_files.MACRO_ANCHOR)])
        for k, (e, rng_) in enumerate([("0&1", "10-10"), ("0>0&1=1", "10-10"), ("0>1&1", "0-20"),
                                       ("0=2&1", "2-40"), ("0&1=0", "10-10")]):
            ldb.append("Diff.Eng.Mac%d.%d;Engine:51-255,Target:0;%s;%s;${%s}%d$\n" % (g, k, e, a, rng_, g))
    # Two macro subsignatures in one signature, and a macro group used by two signatures.
    ldb.append("Diff.Eng.Mac2x;Engine:51-255,Target:0;0&1&2&3;%s;${6-6}1$;%s;${0-40}2$\n"
               % (hx(gen_files.MACRO_ANCHOR[1]), hx(gen_files.MACRO_ANCHOR[2])))
    return {"m.ndb": ndb, "m.ldb": ldb}


OFFSETS_EXE = ["EP+0", "EP+16", "EP-4", "EP+0,4096", "S0+0", "S1+0", "S0+4,64", "S7+0", "SL+0", "SL+16",
               "SL+0,8192", "SE0", "SE1", "SE9", "EOF-100", "EOF-100,100", "0", "64,4096", "*", "VI"]
OFFSETS_ANY = ["0", "0,64", "4", "EOF-20", "EOF-4096,8192", "*"]
EXE_PATTERNS = ["7f454c46", "cffaedfe", "cefaedfe", "4d5a90", "9090909090", "cccccccc", "00000000",
                hx(b"ELF32CODE"), hx(b"MACHOCODE"), "50450000", "0000??0000", "9090{1-4}9090", "(90|cc)(90|cc)9090"]


def engine_offsets():
    ndb, ldb = [], []
    n = 0
    for target in (1, 6, 9):
        for off in OFFSETS_EXE:
            for pat in EXE_PATTERNS:
                ndb.append("Diff.Eng.Off.%d:%d:%s:%s\n" % (n, target, off, pat))
                n += 1
    for off in OFFSETS_ANY:
        for pat in EXE_PATTERNS[:8]:
            ndb.append("Diff.Eng.Off.%d:0:%s:%s\n" % (n, off, pat))
            n += 1
    for target in (1, 6, 9):
        for k, off in enumerate(OFFSETS_EXE):
            ldb.append("Diff.Eng.OffL.%d.%d;Engine:51-255,Target:%d;0&1;%s:%s;%s\n"
                       % (target, k, target, off, EXE_PATTERNS[k % len(EXE_PATTERNS)],
                          EXE_PATTERNS[(k + 3) % len(EXE_PATTERNS)]))
    # Regexes with relative offsets (0502 computes their offsets on use).
    for target in (1, 6, 9):
        for k, off in enumerate(["*", "0,64", "EP+0,4096", "SL+0,8192", "S0+0,64", "SE1", "EOF-200,200", "VI"]):
            ldb.append("Diff.Eng.OffP.%d.%d;Engine:81-255,Target:%d;0&1;%s;%s:0/(ELF32|MACHO)CODE|\\x90{6}/\n"
                       % (target, k, target, {1: "4d5a90", 6: "7f454c46", 9: "faedfe"}[target], off))
    return {"o.ndb": ndb, "o.ldb": ldb}


YARA_RULES = """\
rule DiffYaraAny { strings: $a = "yara-alpha" $b = "YARA-BETA" condition: any of them }
rule DiffYaraAll { strings: $a = "yara-alpha" $b = { de ad be ef 01 } condition: all of them }
rule DiffYaraCount { strings: $a = "yara-alpha" condition: #a > 2 }
rule DiffYaraAt { strings: $a = "yara-alpha" condition: $a at 0 }
rule DiffYaraIn { strings: $a = "yara-alpha" condition: $a in (0..40) }
rule DiffYaraMZ { strings: $b = "YARA-BETA" condition: uint16(0) == 0x5a4d and $b }
rule DiffYaraSize { strings: $g = "yara-gamma-42" condition: $g and filesize < 100 }
rule DiffYaraNocase { strings: $a = "yara-beta" nocase condition: $a }
rule DiffYaraNot { strings: $a = "yara-alpha" $b = "YARA-BETA" condition: $a and not $b }
rule DiffYaraTwoOf { strings: $a = "yara-alpha" $b = "YARA-BETA" $c = { de ad be ef 01 } condition: 2 of them }
rule DiffYaraHexJump { strings: $h = { de ad [0-4] ef 01 } condition: $h }
rule DiffYaraSame1 { strings: $a = "yara-gamma-42" condition: $a }
rule DiffYaraSame2 { strings: $a = "yara-gamma-42" condition: $a and filesize > 50 }
"""


def engine_bcomp():
    a = hx(gen_files.BCOMP_ANCHOR)
    ldb = []
    for k, (opts, cmp_) in enumerate([("de4", ">100"), ("d4", "=255"), ("he4", "<4096"), ("h4", ">0"),
                                      ("ib4", "=4096"), ("il4", ">65535"), ("il2", "=0"), ("a4", ">7"),
                                      ("ib2", "=0"), ("de3", ">100,<200"), ("il4", "=1094795585")]):
        ldb.append("Diff.Eng.BC.%d;Engine:81-255,Target:0;0&1;%s;0(>>12#%s#%s)\n" % (k, a, opts, cmp_))
    ldb.append("Diff.Eng.BC.back;Engine:81-255,Target:0;0&1;%s;0(<<2#ib2#>0)\n" % a)
    ldb.append("Diff.Eng.BC.eof;Engine:81-255,Target:0;0&1;%s;0(>>8#ib4#>0)\n" % a)
    return {"b.ldb": ldb}


def engine_same():
    b = hx(gen_files.SAME_BYTES)
    ndb = ["Diff.Eng.Same.%d:%d:%s:%s\n" % (k, t, off, b)
           for k, (t, off) in enumerate([(0, "EOF-50"), (0, "0"), (0, "*"), (0, "100,400"), (1, "*"),
                                         (0, "*"), (6, "SL+0,1000"), (0, "EOF-400,400")])]
    ldb = ["Diff.Eng.SameL.%d;Engine:51-255,Target:0;%s;%s\n" % (k, e, s)
           for k, (e, s) in enumerate([("0&1", b + ";53414d45"), ("0>1", b), ("0", b), ("0&1", b + ";EOF-50:" + b),
                                       ("0&1", "53414d45;" + b)])]
    return {"s.ndb": ndb, "s.ldb": ldb}


BM_OFFSETS_ANY = ["0", "5", "EOF-4", "EOF-70", "100,4000", "131000,200", "EOF-131200,400", "*"]
BM_OFFSETS_PE = ["0", "EP+0", "EP+4", "EOF-16", "S0+0", "SL+0", "SE1"]  # BM in the PE root (no * nor ,)


def engine_bm():
    ndb = []
    for pat in gen_files.bm_patterns():
        ndb.append("Diff.Eng.BM.%d:0:*:%s\n" % (len(ndb), hx(pat)))
    for pat in (gen_files.BM_SHORT[1], gen_files.BM_SAME[1], gen_files.BM_LONG[0], gen_files.BM_COLLIDE[0]):
        for off in BM_OFFSETS_ANY:
            ndb.append("Diff.Eng.BM.%d:0:%s:%s\n" % (len(ndb), off, hx(pat)))
    for pat in ("4d5a90", "4d5a9000", "50450000", "9090909090", hx(gen_files.BM_SHORT[0])):
        for off in BM_OFFSETS_PE:
            ndb.append("Diff.Eng.BM.%d:1:%s:%s\n" % (len(ndb), off, pat))
    for target in range(2, 15):  # the other targets take plain bytes in Aho-Corasick (ac_only)
        for pat in (gen_files.BM_SHORT[2], gen_files.BM_LONG[target % len(gen_files.BM_LONG)], b"bmtext"):
            ndb.append("Diff.Eng.BM.%d:%d:*:%s\n" % (len(ndb), target, hx(pat)))
    long_ = ["Diff.Eng.BMLong.%d:0:*:%s\n" % (k, hx(p)) for k, p in enumerate(gen_files.BM_LONG + gen_files.BM_TEXT)]
    long_.append("Diff.Eng.BMLong.at0:0:0:%s\n" % hx(gen_files.BM_LONG[0]))
    long_.append("Diff.Eng.BMLong.eof:0:EOF-64:%s\n" % hx(gen_files.BM_LONG[7]))
    return {"b.ndb": ndb}, {"l.ndb": long_}


def engine(outdir):
    parts = {"macro": engine_macro(), "offsets": engine_offsets(), "yara": {"y.yar": [YARA_RULES]},
             "bcomp": engine_bcomp(), "same": engine_same()}
    parts["bm"], parts["bmlong"] = engine_bm()
    parts["all"] = {f"{k}-{f}": lines for k, p in parts.items() for f, lines in p.items()}
    for sub, files in parts.items():
        os.makedirs(os.path.join(outdir, sub), exist_ok=True)
        for name, lines in files.items():
            with open(os.path.join(outdir, sub, name), "w", encoding="ascii") as f:
                f.writelines(lines)


def pe_sections(data):
    """(SizeOfRawData, raw bytes) of each section of a PE file, [] for anything else."""
    if data[:2] != b"MZ" or len(data) < 64:
        return []
    pe = int.from_bytes(data[60:64], "little")
    if data[pe:pe + 4] != b"PE\0\0":
        return []
    count = int.from_bytes(data[pe + 6:pe + 8], "little")
    table = pe + 24 + int.from_bytes(data[pe + 20:pe + 22], "little")
    out = []
    for k in range(min(count, 96)):
        h = data[table + 40 * k:table + 40 * k + 40]
        if len(h) < 40:
            break
        rsz, raw = int.from_bytes(h[16:20], "little"), int.from_bytes(h[20:24], "little")
        if rsz and raw + rsz <= len(data):
            out.append((rsz, data[raw:raw + rsz]))
    return out


def hashes(outdir, corpus):
    """Hash signatures of the corpus files (--hash; patch 0508 changes how their sets are built):
    whole-file MD5 (.hdb), SHA1 and SHA256 (.hsb) with the file's size, with the '*' size (FLEVEL
    73), one MD5 twice under two names, PE section MD5 (.mdb) and SHA1/SHA256 (.msb); decoys that
    share a matched file's size (so a size's set holds many hashes and is sorted) and 40,000 random
    ones over random sizes (so the size tables grow many times), interleaved with the real ones."""
    import hashlib
    rng = random.Random(SEED + 507)
    dbs = {"h.hdb": [], "h.hsb": [], "h.mdb": [], "h.msb": []}

    def put(db, line):
        lines = dbs[db]
        lines.insert(rng.randrange(len(lines) + 1), line + "\n")

    for k, path in enumerate(sorted(corpus)):
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            continue
        size, name, kind = len(data), "Diff.Eng.Hash.%d" % k, k % 7
        if kind == 0:
            put("h.hdb", "%s:%d:%s" % (hashlib.md5(data).hexdigest(), size, name))
        elif kind == 1:
            put("h.hsb", "%s:%d:%s" % (hashlib.sha1(data).hexdigest(), size, name))
        elif kind == 2:
            put("h.hsb", "%s:%d:%s" % (hashlib.sha256(data).hexdigest(), size, name))
        elif kind == 3:
            put("h.hdb", "%s:*:%s:73" % (hashlib.md5(data).hexdigest(), name))
        elif kind == 4:
            put("h.hsb", "%s:*:%s:73" % (hashlib.sha256(data).hexdigest(), name))
        elif kind == 5:
            for tag in ("a", "b"):
                put("h.hdb", "%s:%d:%s.%s" % (hashlib.md5(data).hexdigest(), size, name, tag))
        for j in range(rng.randrange(0, 30)):
            put("h.hdb", "%s:%d:Diff.Eng.HashDecoy.%d.%d" % (rhex(rng, 16), size, k, j))
        for s, (rsz, raw) in enumerate(pe_sections(data)):
            put("h.mdb", "%d:%s:%s.S%d" % (rsz, hashlib.md5(raw).hexdigest(), name, s))
            algo = hashlib.sha1 if s % 2 else hashlib.sha256
            put("h.msb", "%d:%s:%s.T%d:73" % (rsz, algo(raw).hexdigest(), name, s))
    for j in range(40000):
        db, n = rng.choice([("h.hdb", 16), ("h.hsb", 20), ("h.hsb", 32), ("h.mdb", 16)])
        size = rng.choice([rng.randrange(1, 1 << 24), rng.randrange(1, 5000)])
        if db == "h.mdb":
            put(db, "%d:%s:Diff.Eng.HashRnd.%d" % (size, rhex(rng, n), j))
        else:
            put(db, "%s:%d:Diff.Eng.HashRnd.%d" % (rhex(rng, n), size, j))
    os.makedirs(outdir, exist_ok=True)
    for name, lines in dbs.items():
        if lines:
            with open(os.path.join(outdir, name), "w", encoding="ascii") as f:
                f.writelines(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--engine"]:
        engine(sys.argv[2])
    elif sys.argv[1:2] == ["--hash"]:
        hashes(sys.argv[2], sys.argv[3:])
    else:
        main()
