#!/usr/bin/python3
"""scan_v3.py -- scans one or more files with clamrest's /v3 API using python-requests.

Usage: scan_v3.py [--url URL] [--user USER] [--password PWD] [--all-matches] [--chunked] FILE...
Sends every file in one multipart request to /v3/scan (or one file streamed to /v3/scan-chunked),
then prints, per file, its verdict, SHA-256, libclamav's type and every match with the path inside
the archive where it was found. Exits 0 when every file is clean, 1 when any is malware, 2 on an
error. Needs python3-requests (Debian) or `pip install requests`.
"""

import argparse
import sys

import requests

CHUNK = 64 * 1024       # bytes per chunk of a streamed upload
TIMEOUT = 60            # seconds to connect and between bytes of the answer


def file_chunks(path):
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def scan(url, auth, paths, all_matches, chunked):
    """POST /v3/scan with one file part per path (requests streams open files from disk), or the
    one file as the body of /v3/scan-chunked."""
    params = {"all_matches": "true" if all_matches else "false"}
    if chunked:
        return requests.post(f"{url}/v3/scan-chunked", params=params, auth=auth,
                             data=file_chunks(paths[0]), timeout=TIMEOUT)
    files = [("file", (p, open(p, "rb"))) for p in paths]
    try:
        return requests.post(f"{url}/v3/scan", params=params, auth=auth, files=files, timeout=TIMEOUT)
    finally:
        for _, (_, f) in files:
            f.close()


def report(answer):
    for f in answer["files"]:
        verdict = "MALWARE" if f["malware"] else "clean"
        if f["limits_exceeded"]:
            verdict += " (not scanned completely: a limit was met)"
        print(f"{f['name'] or '-'}: {verdict}  size={f['size']} type={f['type']} sha256={f['sha256']}")
        for m in f["matches"]:
            print(f"    {m['signature']}  in  {' > '.join(m['path'])}")
    print(f"libclamav {answer['engine']['libclamav']}, database {answer['engine']['database']}, "
          f"{answer['time']:.3f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--url", default="http://localhost:8090")
    parser.add_argument("--user", default="app1")
    parser.add_argument("--password", default="letmein")
    parser.add_argument("--all-matches", action="store_true", help="every signature, not the first")
    parser.add_argument("--chunked", action="store_true", help="stream one file to /v3/scan-chunked")
    args = parser.parse_args()
    if args.chunked and len(args.files) != 1:
        parser.error("--chunked takes one file")

    try:
        response = scan(args.url.rstrip("/"), (args.user, args.password), args.files,
                        args.all_matches, args.chunked)
    except (OSError, requests.RequestException) as e:
        print(f"scan_v3.py: {e}", file=sys.stderr)
        return 2
    if response.status_code != 200:
        # Every v3 error is JSON: {"error": "..."}.
        print(f"scan_v3.py: {response.status_code} {response.text.strip()}", file=sys.stderr)
        return 2
    answer = response.json()
    report(answer)
    return 1 if answer["malware"] else 0


if __name__ == "__main__":
    sys.exit(main())
