#!/bin/sh
# curl.sh -- one curl call for every endpoint of clamrest, against the service `make run` starts.
# Run from anywhere: sh client-examples/curl.sh. CLAMREST_URL, CLAMREST_USER and CLAMREST_PWD
# point it at another service.
set -eu
cd "$(dirname "$0")"
url=${CLAMREST_URL:-http://localhost:8090}
auth=${CLAMREST_USER:-app1}:${CLAMREST_PWD:-letmein}

# Prints the command, quoted so it can be pasted, then runs it.
show() {
	printf '$'
	for arg in "$@"; do
		case $arg in
		*[!A-Za-z0-9_./:@=-]*) printf " '%s'" "$arg" ;;
		*) printf ' %s' "$arg" ;;
		esac
	done
	echo
	"$@"
	echo
	echo
}

# Health check: 200 "Service OK", 503 while the service is not ready.
show curl -sS -w ' [%{http_code}]' "$url/check"

# Database version: 200 {"service", "clamd-actual", "clamd-required", "outdated": false}; 500 when
# the database is outdated or a version cannot be had.
show curl -sS -w ' [%{http_code}]' "$url/check_version"

# Scan one file of a multipart form: {"malware": true, "reason": "Eicar-Test-Signature.UNOFFICIAL",
# "time": ...} with the demo database of make run / make up ("Win.Test.EICAR_HDB-1" with ClamAV's).
show curl -sS -w ' [%{http_code}]' -u "$auth" -F file=@eicar.txt "$url/v2/scan"

# Scan the request body itself, sent with chunked transfer encoding (any size, no form needed).
show curl -sS -w ' [%{http_code}]' -u "$auth" -H 'Transfer-Encoding: chunked' \
	--data-binary @eicar.txt "$url/v2/scan-chunked"

# The same endpoint with a plain Content-Length body; a clean file answers "malware": false.
show curl -sS -w ' [%{http_code}]' -u "$auth" --data-binary @README.md "$url/v2/scan-chunked"

# Without the right password: 401.
show curl -sS -o /dev/null -w '[%{http_code}]' -u app1:wrong --data-binary @eicar.txt "$url/v2/scan-chunked"

# v3: several files in one request, every signature that matches (all_matches=true) and where in
# an archive it was found, SHA-256 and libclamav's type of each file; errors are JSON too.
show curl -sS -w ' [%{http_code}]' -u "$auth" -F file=@eicar.txt -F file=@README.md \
	"$url/v3/scan?all_matches=true"

# v3 with a streamed body: one file, named null in the answer.
show curl -sS -w ' [%{http_code}]' -u "$auth" -H 'Transfer-Encoding: chunked' \
	--data-binary @eicar.txt "$url/v3/scan-chunked"
