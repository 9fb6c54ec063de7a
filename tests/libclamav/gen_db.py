#!/usr/bin/python3
"""gen_db.py -- seeded signature database for the libclamav differential test.

Usage: gen_db.py OUTDIR NDB LDB [CORPUS_FILE...]

OUTDIR/diff.ndb: NDB body signatures of pseudo-random bytes using '??', '{n-m}', '*', alternatives
'(aa|bb)' and EP+/EOF- offsets; OUTDIR/diff.ldb: LDB logical signatures with 1-5 subsignatures,
expressions with &, |, =, >, <, 2% PCRE subsignatures. Planted among them (so that files of the
corpus are detected, often by several signatures at once, and the first one in load order wins):
signatures built from slices of the corpus files, and logical signatures true with no subsignature
matched, limited by FileSize. Same arguments and corpus, same bytes.
"""
import os
import random
import sys

SEED = 0x6C6962636C616D  # "libclam"


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


if __name__ == "__main__":
    main()
