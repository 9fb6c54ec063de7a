#!/usr/bin/python3
"""scan.py -- scans a file with clamrest using python-requests, as a multipart form or streamed.

Usage: scan.py [--url URL] [--user USER] [--password PWD] [--chunked] FILE
Prints the service's JSON answer; exits 0 when the file is clean, 1 when it is malware, 2 on an error.
Needs python3-requests (Debian) or `pip install requests`.
"""

import argparse
import json
import sys

import requests

CHUNK = 64 * 1024       # bytes per chunk of a streamed upload
TIMEOUT = 60            # seconds to connect and between bytes of the answer


def file_chunks(path):
    """The file, piece by piece: requests sends a generator with chunked transfer encoding."""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def scan_multipart(url, auth, path):
    """POST /v2/scan: the file as the one part of a multipart/form-data body."""
    with open(path, "rb") as f:
        return requests.post(f"{url}/v2/scan", auth=auth, files={"file": f}, timeout=TIMEOUT)


def scan_chunked(url, auth, path):
    """POST /v2/scan-chunked: the body is the file, streamed without reading it all into memory."""
    return requests.post(f"{url}/v2/scan-chunked", auth=auth, data=file_chunks(path), timeout=TIMEOUT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--url", default="http://localhost:8090")
    parser.add_argument("--user", default="app1")
    parser.add_argument("--password", default="letmein")
    parser.add_argument("--chunked", action="store_true", help="stream to /v2/scan-chunked")
    args = parser.parse_args()

    scan = scan_chunked if args.chunked else scan_multipart
    try:
        response = scan(args.url.rstrip("/"), (args.user, args.password), args.file)
    except (OSError, requests.RequestException) as e:
        print(f"scan.py: {e}", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"scan.py: {response.status_code} {response.text.strip()}", file=sys.stderr)
        return 2
    result = response.json()
    print(json.dumps(result))
    return 1 if result["malware"] else 0


if __name__ == "__main__":
    sys.exit(main())
