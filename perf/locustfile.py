"""clamrest performance tests: Locust users that check, version-check and scan like real clients.

Three user classes (see perf/README.md): CheckUser (CHECK, CHECK_VERSION), UnauthorisedUser
(UNAUTHORISED) and ScanUser (MALWARE, CLEAN, USER_DEFINED); a fourth, V3User (V3_MULTI), exists
only when V3_USERS is above 0, so the default scenario is the seed's. Settings come from the
environment (PERF_USER, PERF_PWD, USER_FILE, CLAMD_RESPONSE_THRESHOLD, CLAMD_VERSION_THRESHOLD,
REQUESTS_LOGGING, V3_USERS); the service address from Locust's own -H / LOCUST_HOST.
"""

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import locust
import locust.runners
from locust import HttpUser, task

REPO_ROOT = Path(__file__).resolve().parent.parent

# Debian 12's python3-locust 2.12.1 ships an empty version string (locust/_version.py). A worker
# announces itself to the master with locust.runners.__version__, and a master reading an empty
# one rejects the worker as "an old (pre 2.0) worker", so distributed runs never start. Give the
# module a version when, and only when, it has none; master and workers both load this file, so
# both agree on it. A locust with a real version is left alone.
DEBIAN_LOCUST_VERSION = "2.12.1"
if not locust.runners.__version__:
    locust.runners.__version__ = DEBIAN_LOCUST_VERSION
    locust.__version__ = DEBIAN_LOCUST_VERSION

# The EICAR test file in two pieces, so requests sends it with chunked transfer encoding.
EICAR_PIECES = (
    b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
    b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
)
LOREM = b"""
    Lorem ipsum dolor sit amet, consectetur adipiscing elit,
    sed do eiusmod tempor incididunt ut labore et dolore magna
    aliqua. Ut enim ad minim veniam, quis nostrud exercitation
    ullamco laboris nisi ut aliquip ex ea commodo consequat.
    """
CLEAN_PIECES = 4                    # times LOREM is sent, one chunk each
USER_FILE_CHUNK = 64 * 1024         # bytes per chunk of USER_FILE
USER_DEFINED_THRESHOLD = 1.0        # seconds; USER_FILE is large, so it has its own threshold
BAD_PASSWORD = "let-it-go"


class SettingsError(ValueError):
    """A setting in the environment has a value the suite cannot use."""


@dataclass(frozen=True)
class Settings:
    perf_user: str
    perf_pwd: str
    user_file: Path
    clamd_response_threshold: float     # seconds
    clamd_version_threshold: int        # database versions
    requests_logging: bool
    v3_users: int = 0                   # weight of V3User; 0: no such class


def _float_setting(env, name, default):
    raw = env.get(name) or default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _int_setting(env, name, default):
    raw = env.get(name) or default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative, got {raw!r}")
    return value


def _bool_setting(env, name, default):
    raw = (env.get(name) or default).strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {env.get(name)!r}")


def _path_setting(env, name, default):
    path = Path(env.get(name) or default)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        raise SettingsError(
            f"{name} {path} is not a readable file; make the default one with "
            f"`sh scripts/make-sample-file client-examples/5MiB.bin 5242880`"
        )
    return path


def settings_from_env(env):
    """Reads the suite's settings from the mapping env; raises SettingsError on a bad value."""
    return Settings(
        perf_user=env.get("PERF_USER") or "app1",
        perf_pwd=env.get("PERF_PWD") or "letmein",
        user_file=_path_setting(env, "USER_FILE", "client-examples/5MiB.bin"),
        clamd_response_threshold=_float_setting(env, "CLAMD_RESPONSE_THRESHOLD", "0.01"),
        clamd_version_threshold=_int_setting(env, "CLAMD_VERSION_THRESHOLD", "3"),
        requests_logging=_bool_setting(env, "REQUESTS_LOGGING", "false"),
        v3_users=_int_setting(env, "V3_USERS", "0"),
    )


def debug_requests_on():
    """Logs every request and response header that requests / urllib3 send and receive."""
    from http.client import HTTPConnection
    HTTPConnection.debuglevel = 1
    logging.getLogger().setLevel(logging.DEBUG)
    urllib3_log = logging.getLogger("urllib3")
    urllib3_log.setLevel(logging.DEBUG)
    urllib3_log.propagate = True


try:
    SETTINGS = settings_from_env(os.environ)
except SettingsError as e:
    sys.exit(f"perf/locustfile.py: bad setting: {e}")
AUTH = (SETTINGS.perf_user, SETTINGS.perf_pwd)
if SETTINGS.requests_logging:
    debug_requests_on()


def malware_file_gen():
    """The EICAR test file, piece by piece."""
    yield from EICAR_PIECES


def clean_file_gen():
    """A few lines of clean text, piece by piece."""
    for _ in range(CLEAN_PIECES):
        yield LOREM


def user_file_gen(path=None):
    """USER_FILE, chunk by chunk."""
    with open(path or SETTINGS.user_file, "rb") as f:
        while chunk := f.read(USER_FILE_CHUNK):
            yield chunk


def parse_json(response):
    """The decoded JSON object of response, or None when it has none."""
    try:
        data = response.json()
    except ValueError:      # json.JSONDecodeError and requests' own decode error are ValueErrors
        return None
    return data if isinstance(data, dict) else None


def answer_text(response):
    """The status and start of the body of response, or the error that kept it from coming."""
    if response.status_code == 0:
        return f"no answer: {response.error!r}"
    return f"{response.status_code} {response.text[:200]!r}"


def scan_error(data, expect_malware, threshold):
    """Why the decoded answer data of a scan is wrong, or None when it is right.

    A right answer has the three fields of the contract with their types, the expected verdict (a
    malware answer names its reason, a clean one has none) and a scan time within threshold seconds.
    """
    for field in ("malware", "reason", "time"):
        if field not in data:
            return f"missing attribute in response: {field!r}: {data}"
    malware, reason, taken = data["malware"], data["reason"], data["time"]
    if not isinstance(malware, bool):
        return f"malware is not a boolean: {data}"
    if not isinstance(taken, (int, float)) or isinstance(taken, bool):
        return f"time is not a number: {data}"
    if malware != expect_malware:
        return f"expected malware={expect_malware}, got: {data}"
    if expect_malware and not (isinstance(reason, str) and reason):
        return f"malware without a reason: {data}"
    if not expect_malware and reason is not None:
        return f"clean file with a reason: {data}"
    if taken > threshold:
        return f"response too slow: {taken} s > {threshold} s"
    return None


def version_error(status, data, version_threshold):
    """Why a /check_version answer (status, decoded body) is wrong, or None when it is acceptable.

    200 must report a database that is not outdated. 500 is acceptable when it reports an outdated
    database lagging by at most version_threshold versions; a 500 with an error, any other status
    or a missing field is wrong.
    """
    if data is None:
        return f"status {status}, undecodable body"
    if status not in (200, 500):
        return f"unexpected status {status}: {data}"
    if "error" in data:
        return f"status {status}, error: {data['error']}"
    try:
        actual, required, outdated = data["clamd-actual"], data["clamd-required"], data["outdated"]
    except KeyError as e:
        return f"missing attribute in response: {e}: {data}"
    # Decimal strings, as upstream (dit-clamav-rest) and clamrest write them.
    if not all(isinstance(v, str) and v.isdigit() for v in (actual, required)):
        return f"versions are not decimal strings: {data}"
    actual, required = int(actual), int(required)
    if status == 200:
        return f"status 200 but outdated: {data}" if outdated else None
    if outdated is not True:
        return f"status 500 but not outdated: {data}"
    lag = abs(required - actual)
    if lag > version_threshold:
        return (f"unacceptable clamd version lag: actual: {actual} required: {required} "
                f"lag: {lag} > {version_threshold}")
    return None


class ClamrestUser(HttpUser):
    """The service `make run` starts, unless -H / LOCUST_HOST says otherwise."""

    abstract = True
    host = "http://localhost:8090"


class CheckUser(ClamrestUser):
    """Polls the health and database version checks, as a load balancer and a monitor would."""

    @task
    def check_service(self):
        """Service health check."""
        with self.client.get("/check", name="CHECK", catch_response=True) as response:
            if response.status_code != 200 or response.text != "Service OK":
                response.failure(f"expected 200 'Service OK', got {answer_text(response)}")
            else:
                response.success()

    @task
    def check_version(self):
        """Database version check.

        An outdated database answers 500; that is a failure only when the lag between the
        required and the actual version exceeds CLAMD_VERSION_THRESHOLD.
        """
        with self.client.get("/check_version", name="CHECK_VERSION",
                             catch_response=True) as response:
            if response.status_code == 0:
                error = answer_text(response)
            else:
                error = version_error(response.status_code, parse_json(response),
                                      SETTINGS.clamd_version_threshold)
            if error:
                response.failure(error)
            else:
                response.success()


class UnauthorisedUser(ClamrestUser):
    """Scans with a wrong password; the service must refuse with 401."""

    @task
    def check_not_authorised(self):
        """401 Unauthorized check."""
        with self.client.post("/v2/scan-chunked", name="UNAUTHORISED",
                              auth=(SETTINGS.perf_user, BAD_PASSWORD), data=clean_file_gen(),
                              catch_response=True) as response:
            if response.status_code != 401:
                response.failure(f"expected 401, got {answer_text(response)}")
            else:
                response.success()


class ScanUser(ClamrestUser):
    """Uploads files to /v2/scan-chunked with chunked transfer encoding and checks the verdicts."""

    def _scan(self, name, body, expect_malware, threshold):
        with self.client.post("/v2/scan-chunked", name=name, auth=AUTH, data=body,
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {answer_text(response)}")
            elif (data := parse_json(response)) is None:
                response.failure("failed to decode response")
            elif error := scan_error(data, expect_malware, threshold):
                response.failure(error)
            else:
                response.success()

    @task
    def check_malware_file(self):
        """EICAR must be found, e.g. {"malware": true, "reason": "Win.Test.EICAR_HDB-1", ...}."""
        self._scan("MALWARE", malware_file_gen(), True, SETTINGS.clamd_response_threshold)

    @task
    def check_clean_file(self):
        """Clean text must pass: {"malware": false, "reason": null, "time": ...}."""
        self._scan("CLEAN", clean_file_gen(), False, SETTINGS.clamd_response_threshold)

    @task
    def check_user_defined_file(self):
        """USER_FILE (5 MiB of pseudo-random bytes by default) must pass within 1 s."""
        self._scan("USER_DEFINED", user_file_gen(), False, USER_DEFINED_THRESHOLD)


def v3_scan_error(data, expect, threshold):
    """Why a /v3/scan answer is wrong, or None: one file per expected verdict, in order, each with
    its fields, a match (with a path starting at the file's name) exactly when it is malware, and a
    scan time within threshold seconds."""
    files = data.get("files")
    if not isinstance(files, list) or len(files) != len(expect):
        return f"expected {len(expect)} files: {data}"
    if data.get("malware") is not any(m for _, m in expect):
        return f"wrong overall verdict: {data}"
    for f, (name, malware) in zip(files, expect):
        missing = {"name", "size", "sha256", "type", "malware", "matches", "limits_exceeded",
                   "time"} - set(f)
        if missing:
            return f"missing attributes {sorted(missing)}: {f}"
        if f["name"] != name or f["malware"] is not malware or bool(f["matches"]) is not malware:
            return f"expected {name} malware={malware}, got: {f}"
        if any(m["path"][:1] != [name] for m in f["matches"]):
            return f"a match path does not start at {name}: {f}"
        if f["time"] > threshold:
            return f"response too slow: {f['time']} s > {threshold} s"
    return None


if SETTINGS.v3_users > 0:
    class V3User(ClamrestUser):
        """Sends EICAR and clean text in one POST /v3/scan with all_matches (V3_USERS > 0 only)."""

        weight = SETTINGS.v3_users

        @task
        def check_v3_multi(self):
            files = [("file", ("eicar.com", b"".join(EICAR_PIECES))),
                     ("file", ("lorem.txt", LOREM * CLEAN_PIECES))]
            with self.client.post("/v3/scan?all_matches=true", name="V3_MULTI", auth=AUTH,
                                  files=files, catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"expected 200, got {answer_text(response)}")
                elif (data := parse_json(response)) is None:
                    response.failure("failed to decode response")
                elif error := v3_scan_error(data, [("eicar.com", True), ("lorem.txt", False)],
                                            SETTINGS.clamd_response_threshold):
                    response.failure(error)
                else:
                    response.success()
