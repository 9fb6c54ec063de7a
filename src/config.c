/* config.c -- settings from the environment and command-line flags, each range-checked, in one table. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util.h"


/* CT_SECS: an unsigned, 3600 or 1h; CT_BOOL: an unsigned 0 or 1, from yes/no, true/false, on/off,
 * 1/0 (clamd.conf's words, any case). */
enum config_type { CT_STR, CT_UINT, CT_ULL, CT_SECS, CT_BOOL };

struct config_opt {
	const char *env;
	const char *flag;
	enum config_type type;
	size_t offset;
	const char *def;		/* NULL: unset */
	unsigned long long min, max;
	const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define GiB (1024ULL * 1024 * 1024)
#define CONFIG_SIZE_MAX (2 * GiB - 1)	/* bytes: libclamav scans nothing larger */
#define CONFIG_BODY_MAX (1024 * GiB)	/* bytes: the largest BODY_MEMORY or BODY_DISK */
#define CONFIG_FILES_PER_REQUEST_MAX 1024	/* the most MAX_FILES_PER_REQUEST may allow */
#define CONFIG_AGE_MAX (3650ULL * 86400)	/* seconds: the longest DB_MAX_AGE, ten years */
#define CONFIG_DISK_SHARE 2		/* BODY_DISK defaults to 1/2 of TMPDIR's free space */
#define CONFIG_PUA_MAX 30	/* bytes of a PUA category: libclamav's cli_chkpua keeps 32 with dots */
#define CONFIG_PUA_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static const struct config_opt config_opts[] = {
	{ "HOST", "host", CT_STR, OFF(host), "0.0.0.0", 0, 0, "address to listen on" },
	{ "PORT", "port", CT_UINT, OFF(port), "8090", 1, 65535, "TCP port" },
	{ "APPLICATION_USERS", "users", CT_STR, OFF(users), "", 0, 0,
	  "basic-auth users: user::pbkdf2-sha256-hash, separated by newlines or \\n" },
	{ "AUTH_THREADS", "auth-threads", CT_UINT, OFF(auth_threads), "1", 1, 64,
	  "threads that check new passwords (PBKDF2), apart from the HTTP threads" },
	{ "AUTH_QUEUE", "auth-queue", CT_UINT, OFF(auth_queue), "64", 0, 100000,
	  "new passwords that may wait for an AUTH_THREADS thread before 503" },
	{ "AUTH_FAIL_RATE", "auth-fail-rate", CT_UINT, OFF(auth_fail_rate), "60", 0, 600000,
	  "failed password checks a minute each client address regains (0: no throttle)" },
	{ "AUTH_FAIL_BURST", "auth-fail-burst", CT_UINT, OFF(auth_fail_burst), "20", 1, 100000,
	  "password checks a client address may have at once before 429 (a right one is given back)" },
	{ "MAX_CONTENT_LENGTH", "max-content-length", CT_ULL, OFF(max_content_length), "1073741824",
	  1, CONFIG_SIZE_MAX, "largest request body in bytes (413 beyond)" },
	{ "MAX_FILES_PER_REQUEST", "max-files-per-request", CT_UINT, OFF(max_files_per_request), "16",
	  1, CONFIG_FILES_PER_REQUEST_MAX,
	  "file parts one POST /v3/scan may carry (400 beyond), scanned one after the other" },
	{ "CLAMAV_DB_DIR", "db-dir", CT_STR, OFF(db_dir), "/var/lib/clamav", 0, 0,
	  "signature database folder" },
	{ "CLAMAV_TXT_URI", "txt-uri", CT_STR, OFF(txt_uri), "current.cvd.clamav.net", 0, 0,
	  "DNS name whose TXT record gives the current database version (empty: no DNS lookup; "
	  "the loaded version counts as current and only DB_MAX_AGE can make it outdated)" },
	{ "CLAMAV_DNS_SERVER", "dns-server", CT_STR, OFF(dns_server), NULL, 0, 0,
	  "ip[:port] of the DNS server for that lookup (default: system resolver)" },
	{ "LOGGING_LEVEL", "log-level", CT_STR, OFF(log_level), "INFO", 0, 0,
	  "a level of Python's logging: DEBUG, INFO, WARNING, ERROR, CRITICAL, NOTSET, or 0-1000" },
	{ "LOG_FORMAT", "log-format", CT_STR, OFF(log_format), "json", 0, 0,
	  "json: one ECS JSON object per line (as upstream); text: one line a person reads (time, "
	  "level, status, method, path, verdict, signature, duration, request id)" },
	{ "TRUSTED_PROXIES", "trusted-proxies", CT_STR, OFF(trusted_proxies), "", 0, 0,
	  "comma-separated CIDR blocks of proxies whose X-Forwarded-For gives the client address "
	  "(logs, password throttle); empty: the header is ignored" },
	{ "TMPDIR", "tmpdir", CT_STR, OFF(tmpdir), "/tmp", 0, 0,
	  "folder for uploads larger than SPILL_THRESHOLD (unlinked files); libclamav's temporary "
	  "files go here only when SCAN_TMPDIR is unset and /dev/shm is too small" },
	{ "SCAN_TMPDIR", "scan-tmpdir", CT_STR, OFF(scan_tmpdir), NULL, 0, 0,
	  "folder for libclamav's temporary files (default: /dev/shm when it is a tmpfs with room for "
	  "SCAN_THREADS x 2 x MAX_FILE_SIZE, else TMPDIR)" },
	{ "REQUEST_TIMEOUT", "request-timeout", CT_UINT, OFF(request_timeout), "30", 1, 86400,
	  "seconds a connection may make no progress, take to send a request head, or keep sending a "
	  "body we refused, before it is closed" },
	{ "SCAN_THREADS", "scan-threads", CT_UINT, OFF(scan_threads), NULL, 1, 1024,
	  "scan worker threads (default: number of CPUs)" },
	{ "SCAN_QUEUE", "scan-queue", CT_UINT, OFF(scan_queue), "100000", 0, 100000,
	  "finished uploads that may wait for a scan thread before 503 (0: none waits; the default "
	  "leaves the wait to SCAN_QUEUE_TIMEOUT, BODY_MEMORY and BODY_DISK)" },
	{ "SCAN_QUEUE_TIMEOUT", "scan-queue-timeout", CT_UINT, OFF(scan_queue_timeout), "60", 1, 86400,
	  "seconds a finished upload may wait for a scan thread; 503 with Retry-After once it has, or "
	  "at once when the measured scan rate predicts a longer wait" },
	{ "IO_THREADS", "io-threads", CT_UINT, OFF(io_threads), NULL, 1, 256,
	  "HTTP threads (default: number of CPUs)" },
	{ "MAX_CONNECTIONS", "max-connections", CT_UINT, OFF(max_connections), "1000", 1, 60000,
	  "open connections at most; when full, the one idle longest is closed for a new one" },
	{ "MIN_UPLOAD_RATE", "min-upload-rate", CT_UINT, OFF(min_upload_rate), "1024", 0, 1U << 30,
	  "bytes per second every request body (wanted or not) must average after the first "
	  "REQUEST_TIMEOUT seconds" },
	{ "SPILL_THRESHOLD", "spill-threshold", CT_ULL, OFF(spill_threshold), "2097152", 0, GiB,
	  "bytes of a body kept in memory; larger bodies go to an unlinked file in TMPDIR" },
	{ "BODY_MEMORY", "body-memory", CT_ULL, OFF(body_memory), "268435456", 0, CONFIG_BODY_MAX,
	  "bytes all uploads in progress may hold in memory; past it a body goes to its file early" },
	{ "BODY_DISK", "body-disk", CT_ULL, OFF(body_disk), NULL, 1, CONFIG_BODY_MAX,
	  "bytes all uploads in progress may hold in TMPDIR; past it 503 (default: half of TMPDIR's "
	  "free space at start)" },
	{ "DB_CHECK_INTERVAL", "db-check-interval", CT_UINT, OFF(db_check_interval), "60", 0, 86400,
	  "seconds between checks of CLAMAV_DB_DIR for new signatures (0: only on SIGUSR2)" },
	{ "DB_MAX_AGE", "db-max-age", CT_SECS, OFF(db_max_age), "0", 0, CONFIG_AGE_MAX,
	  "the database is also outdated (/check_version, /check_warning) once this long past its "
	  "build time: seconds, or a number with s, m, h or d (3d, 12h); 0: no age limit" },
	{ "DB_WAIT", "db-wait", CT_UINT, OFF(db_wait), "0", 0, 1,
	  "1: start without a database in CLAMAV_DB_DIR (/check answers 503) and load the first one "
	  "to appear; 0: exit 2 without one" },
	{ "RELOAD_MODE", "reload-mode", CT_STR, OFF(reload_mode), "concurrent", 0, 0,
	  "concurrent: load new signatures next to the old engine (scans go on; twice the memory); "
	  "low-memory: free the old engine first (scans answer 503 with Retry-After meanwhile)" },
	{ "MAX_SCAN_SIZE", "max-scan-size", CT_ULL, OFF(max_scan_size), NULL, 1, CONFIG_SIZE_MAX,
	  "bytes scanned per request, archives included (default: 4 x MAX_CONTENT_LENGTH, at most 2 GiB - 1)" },
	{ "MAX_FILE_SIZE", "max-file-size", CT_ULL, OFF(max_file_size), NULL, 1, CONFIG_SIZE_MAX,
	  "largest file or archive member scanned; at least MAX_CONTENT_LENGTH (default: MAX_CONTENT_LENGTH)" },
	{ "MAX_RECURSION", "max-recursion", CT_UINT, OFF(max_recursion), "17", 1, 1000,
	  "archive nesting depth" },
	{ "MAX_FILES", "max-files", CT_UINT, OFF(max_files), "10000", 1, 10000000,
	  "files scanned inside one archive" },
	{ "MAX_SCAN_TIME", "max-scan-time", CT_UINT, OFF(max_scan_time), "120000", 1, 86400000,
	  "milliseconds one upload may spend scanning (the files of one /v3 request share it)" },
	{ "MAX_EXPANSION", "max-expansion", CT_UINT, OFF(max_expansion), "100", 0, 1000000,
	  "bytes one scan may unpack per byte uploaded (at least 64 MiB; 0: only MAX_SCAN_SIZE)" },
	{ "SCAN_CACHE", "scan-cache", CT_UINT, OFF(scan_cache), "65536", 0, 16777216,
	  "clean verdicts of complete scans remembered by SHA-256 until the next reload (0: none)" },
	{ "MEMBER_CACHE", "member-cache", CT_UINT, OFF(member_cache), "65536", 0, 16777216,
	  "archive members of complete clean scans remembered, skipped in later uploads (0: none)" },
	/* Scan policy: clamd.conf's options of the same meaning (docs/CONFIGURATION.md, "Scan policy"). */
	{ "ALERT_ENCRYPTED", "alert-encrypted", CT_BOOL, OFF(alert_encrypted), "no", 0, 1,
	  "alert on encrypted archives and documents (clamd AlertEncrypted; adds to the two below)" },
	{ "ALERT_ENCRYPTED_ARCHIVE", "alert-encrypted-archive", CT_BOOL, OFF(alert_encrypted_archive),
	  "yes", 0, 1, "alert on encrypted zip, 7z, RAR, EGG archives (clamd AlertEncryptedArchive)" },
	{ "ALERT_ENCRYPTED_DOC", "alert-encrypted-doc", CT_BOOL, OFF(alert_encrypted_doc), "yes", 0, 1,
	  "alert on documents that need a password, such as PDF (clamd AlertEncryptedDoc)" },
	{ "ALERT_EXCEEDS_MAX", "alert-exceeds-max", CT_BOOL, OFF(alert_exceeds_max), "yes", 0, 1,
	  "a scan cut short by a MAX_* limit is malware (Heuristics.Limits.Exceeded.*); no: it gets "
	  "the verdict of what was scanned (clamd AlertExceedsMax; keep it on)" },
	{ "DETECT_PUA", "detect-pua", CT_BOOL, OFF(detect_pua), "no", 0, 1,
	  "load PUA.* signatures (potentially unwanted applications; clamd DetectPUA)" },
	{ "PUA_INCLUDE", "pua-include", CT_STR, OFF(pua_include), "", 0, 0,
	  "with DETECT_PUA, only PUA signatures of this one category, e.g. Packer or Win.Packer "
	  "(clamd IncludePUA)" },
	{ "PUA_EXCLUDE", "pua-exclude", CT_STR, OFF(pua_exclude), "", 0, 0,
	  "with DETECT_PUA, PUA signatures of every category but this one (clamd ExcludePUA)" },
	{ "HEURISTIC_ALERTS", "heuristic-alerts", CT_BOOL, OFF(heuristic_alerts), "yes", 0, 1,
	  "libclamav's general heuristics (clamd HeuristicAlerts)" },
	{ "ALERT_BROKEN_EXECUTABLES", "alert-broken-executables", CT_BOOL,
	  OFF(alert_broken_executables), "no", 0, 1,
	  "alert on malformed PE and ELF files (clamd AlertBrokenExecutables)" },
	{ "ALERT_OLE2_MACROS", "alert-ole2-macros", CT_BOOL, OFF(alert_ole2_macros), "no", 0, 1,
	  "alert on every OLE2 office file with VBA or Excel 4.0 macros (clamd AlertOLE2Macros)" },
	{ "ALERT_PHISHING_SSL_MISMATCH", "alert-phishing-ssl-mismatch", CT_BOOL,
	  OFF(alert_phishing_ssl_mismatch), "no", 0, 1,
	  "alert on links whose text and target disagree on SSL (clamd AlertPhishingSSLMismatch)" },
	{ "ALERT_PHISHING_CLOAK", "alert-phishing-cloak", CT_BOOL, OFF(alert_phishing_cloak), "no", 0, 1,
	  "alert on cloaked URLs in e-mail and HTML (clamd AlertPhishingCloak)" },
	{ "SCAN_PE", "scan-pe", CT_BOOL, OFF(scan_pe), "yes", 0, 1,
	  "parse Windows executables (clamd ScanPE)" },
	{ "SCAN_ELF", "scan-elf", CT_BOOL, OFF(scan_elf), "yes", 0, 1,
	  "parse ELF executables (clamd ScanELF)" },
	{ "SCAN_OLE2", "scan-ole2", CT_BOOL, OFF(scan_ole2), "yes", 0, 1,
	  "parse OLE2 office files and their macros (clamd ScanOLE2)" },
	{ "SCAN_PDF", "scan-pdf", CT_BOOL, OFF(scan_pdf), "yes", 0, 1, "parse PDF (clamd ScanPDF)" },
	{ "SCAN_SWF", "scan-swf", CT_BOOL, OFF(scan_swf), "yes", 0, 1, "parse Flash (clamd ScanSWF)" },
	{ "SCAN_HTML", "scan-html", CT_BOOL, OFF(scan_html), "yes", 0, 1,
	  "normalise HTML and its scripts (clamd ScanHTML)" },
	{ "SCAN_XMLDOCS", "scan-xmldocs", CT_BOOL, OFF(scan_xmldocs), "yes", 0, 1,
	  "parse XML office documents (clamd ScanXMLDOCS)" },
	{ "SCAN_HWP3", "scan-hwp3", CT_BOOL, OFF(scan_hwp3), "yes", 0, 1,
	  "parse Hangul Word Processor 3 files (clamd ScanHWP3)" },
	{ "SCAN_ONENOTE", "scan-onenote", CT_BOOL, OFF(scan_onenote), "yes", 0, 1,
	  "parse OneNote files (clamd ScanOneNote)" },
	{ "SCAN_ARCHIVE", "scan-archive", CT_BOOL, OFF(scan_archive), "yes", 0, 1,
	  "unpack archives (clamd ScanArchive); no: malware inside any archive is missed" },
	{ "SCAN_MAIL", "scan-mail", CT_BOOL, OFF(scan_mail), "yes", 0, 1,
	  "parse e-mail and its attachments (clamd ScanMail)" },
	{ "SCAN_IMAGE", "scan-image", CT_BOOL, OFF(scan_image), "yes", 0, 1,
	  "parse images (clamd ScanImage)" },
	{ "SCAN_IMAGE_FUZZY_HASH", "scan-image-fuzzy-hash", CT_BOOL, OFF(scan_image_fuzzy_hash), "yes",
	  0, 1, "match images by fuzzy hash (clamd ScanImageFuzzyHash)" },
	{ "ALLOW_TYPES", "allow-types", CT_STR, OFF(allow_types), "", 0, 0,
	  "upload policy: the only file types accepted, libclamav names or groups, comma-separated "
	  "(docs/POLICY.md); \"\": any" },
	{ "DENY_TYPES", "deny-types", CT_STR, OFF(deny_types), "", 0, 0,
	  "upload policy: file types refused (CL_TYPE_MSEXE, executables, office-macros, scripts, "
	  "archives, images, documents, text); \"\": none" },
	{ "POLICY_DEPTH", "policy-depth", CT_STR, OFF(policy_depth), "all", 0, 0,
	  "upload policy: the deepest layer the type rules judge (0: the upload itself; all: every "
	  "embedded file)" },
	{ "BLOCK_EXTENSION_MISMATCH", "block-extension-mismatch", CT_BOOL,
	  OFF(block_extension_mismatch), "no", 0, 1,
	  "upload policy: refuse a multipart file part whose name's extension disagrees with its "
	  "detected type (a .pdf that is a PE)" },
	{ "POLICY_MODE", "policy-mode", CT_STR, OFF(policy_mode), "enforce", 0, 0,
	  "upload policy: enforce (a broken rule answers malware) or report (logged and in /v3 only)" },
	{ "POLICY_FILE", "policy-file", CT_STR, OFF(policy_file), "", 0, 0,
	  "upload policy: a file of named policies and their users (docs/POLICY.md), read again on "
	  "SIGHUP; \"\": none" },
	{ "SHUTDOWN_GRACE", "shutdown-grace", CT_UINT, OFF(shutdown_grace), "140", 0, 86400,
	  "seconds requests in progress get to finish after SIGTERM (/check answers 503 and new "
	  "connections are refused at once); keep it below the service manager's stop timeout" },
	{ "TLS_CERT", "tls-cert", CT_STR, OFF(tls_cert), NULL, 0, 0, "PEM certificate (with TLS_KEY: HTTPS)" },
	{ "TLS_KEY", "tls-key", CT_STR, OFF(tls_key), NULL, 0, 0, "PEM private key" },
	{ "ICAP_PORT", "icap-port", CT_UINT, OFF(icap_port), "0", 0, 65535,
	  "TCP port of the ICAP service (RFC 3507; 1344 is the convention); 0: no ICAP" },
	{ "ICAP_HOST", "icap-host", CT_STR, OFF(icap_host), "127.0.0.1", 0, 0,
	  "address the ICAP service listens on (ICAP has no authentication: keep it on loopback or "
	  "a private network)" },
	{ "ICAP_PREVIEW", "icap-preview", CT_UINT, OFF(icap_preview), "1024", 0, 1048576,
	  "bytes of preview the ICAP OPTIONS answer asks for" },
	{ "ICAP_TEMPLATE", "icap-template", CT_STR, OFF(icap_template), NULL, 0, 0,
	  "HTML file of the 403 page that replaces infected content ({threat}: the signature name); "
	  "default: a built-in page" },
	{ "ICAP_OVERSIZE", "icap-oversize", CT_STR, OFF(icap_oversize), "block", 0, 0,
	  "an ICAP body past MAX_CONTENT_LENGTH, or in a Content-Encoding that cannot be undone: "
	  "block (403 page) or pass (204 with X-Infection-Found Type=2, not scanned)" },
};

#define CONFIG_NOPTS (sizeof(config_opts) / sizeof(config_opts[0]))

static void config_usage(FILE *out);

/* clamd.conf's boolean words, any case. */
static int
config_parse_bool(const char *s, long long *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false",
	    "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*out = strcasecmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

static int
config_set(struct config *c, const struct config_opt *o, const char *val, char *err, size_t errlen)
{
	char *field = (char *)c + o->offset;
	long long v;

	if (o->type == CT_STR) {
		char **s = (char **)(void *)field;

		free(*s);
		*s = strdup(val);
		return *s == NULL ? -1 : 0;
	}
	if (o->type == CT_BOOL) {
		if (config_parse_bool(val, &v) != 0) {
			snprintf(err, errlen, "%s: '%.40s' is not yes or no (also true/false, on/off, 1/0)",
			    o->env, val);
			return -1;
		}
	} else if (o->type == CT_SECS) {
		if (util_parse_seconds(val, (long long)o->min, (long long)o->max, &v) != 0) {
			snprintf(err, errlen, "%s: '%.40s' is not a duration from %llu to %llu seconds "
			    "(a whole number, or with s, m, h or d: 3600, 12h, 3d)", o->env, val, o->min,
			    o->max);
			return -1;
		}
	} else if (util_parse_ll(val, (long long)o->min, (long long)o->max, &v) != 0) {
		snprintf(err, errlen, "%s: '%.40s' is not a whole number from %llu to %llu",
		    o->env, val, o->min, o->max);
		return -1;
	}
	if (o->type == CT_UINT || o->type == CT_SECS || o->type == CT_BOOL)
		*(unsigned *)(void *)field = (unsigned)v;
	else
		*(unsigned long long *)(void *)field = (unsigned long long)v;
	return 0;
}

static const struct config_opt *
config_find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < CONFIG_NOPTS; i++)
		if (strlen(config_opts[i].flag) == len && strncmp(config_opts[i].flag, name, len) == 0)
			return &config_opts[i];
	return NULL;
}

static int
config_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *val;
		const struct config_opt *o;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			printf("clamrest %s\n", CONFIG_VERSION);
			return 1;
		}
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%.60s' (see --help)", a);
			return -1;
		}
		name = a + 2;
		eq = strchr(name, '=');
		o = config_find_flag(name, eq ? (size_t)(eq - name) : strlen(name));
		if (o == NULL) {
			snprintf(err, errlen, "unknown option '%.60s' (see --help)", a);
			return -1;
		}
		if (eq != NULL) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			snprintf(err, errlen, "option --%s needs a value", o->flag);
			return -1;
		}
		if (config_set(c, o, val, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* Defaults that follow other settings: sizes cover MAX_CONTENT_LENGTH, threads follow the CPUs. */
static void
config_derive(struct config *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long long cap = CONFIG_SIZE_MAX;

	if (ncpu < 1)
		ncpu = 1;
	if (c->scan_threads == 0)
		c->scan_threads = (unsigned)ncpu;
	if (c->io_threads == 0)
		c->io_threads = (unsigned)ncpu;
	if (c->max_scan_size == 0)
		c->max_scan_size = c->max_content_length > cap / 4 ? cap : 4 * c->max_content_length;
	if (c->max_file_size == 0)
		c->max_file_size = c->max_content_length;
	if (c->dns_server != NULL && c->dns_server[0] == '\0') {
		free(c->dns_server);
		c->dns_server = NULL;
	}
	if (c->scan_tmpdir != NULL && c->scan_tmpdir[0] == '\0') {
		free(c->scan_tmpdir);
		c->scan_tmpdir = NULL;
	}
}

/* A category is a dotted name (Packer, Win.Packer); clamd refuses IncludePUA with ExcludePUA, and
 * ignores both without DetectPUA, which here is an error rather than a surprise. One category only:
 * libclamav 1.4's cli_chkpua (readdb.c) looks for the whole ".A.B." list clamd builds from several
 * inside one signature's category, so a list of two or more never matches anything. */
static int
config_check_pua(const struct config *c, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (c->pua_include[0] != '\0' && c->pua_exclude[0] != '\0')
		bad = "PUA_INCLUDE and PUA_EXCLUDE: set one or neither";
	else if ((c->pua_include[0] != '\0' || c->pua_exclude[0] != '\0') && !c->detect_pua)
		bad = "PUA_INCLUDE and PUA_EXCLUDE need DETECT_PUA=yes";
	else if (strlen(c->pua_include) > CONFIG_PUA_MAX || strlen(c->pua_exclude) > CONFIG_PUA_MAX)
		bad = "PUA_INCLUDE, PUA_EXCLUDE: a category has at most 30 characters";
	else if (strspn(c->pua_include, CONFIG_PUA_CHARS) != strlen(c->pua_include))
		bad = "PUA_INCLUDE: one category, of letters, digits and dots (libclamav 1.4 matches no list)";
	else if (strspn(c->pua_exclude, CONFIG_PUA_CHARS) != strlen(c->pua_exclude))
		bad = "PUA_EXCLUDE: one category, of letters, digits and dots (libclamav 1.4 matches no list)";
	if (bad == NULL)
		return 0;
	snprintf(err, errlen, "%s", bad);
	return -1;
}

static int
config_check(const struct config *c, char *err, size_t errlen)
{
	if (c->host[0] == '\0') {
		snprintf(err, errlen, "HOST: must not be empty");
		return -1;
	}
	if (c->db_dir[0] == '\0') {
		snprintf(err, errlen, "CLAMAV_DB_DIR: must not be empty");
		return -1;
	}
	if (strcmp(c->reload_mode, "concurrent") != 0 && strcmp(c->reload_mode, "low-memory") != 0) {
		snprintf(err, errlen, "RELOAD_MODE: '%.40s' is neither concurrent nor low-memory",
		    c->reload_mode);
		return -1;
	}
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		snprintf(err, errlen, "TLS_CERT and TLS_KEY: set both or neither");
		return -1;
	}
	if (config_check_pua(c, err, errlen) != 0)
		return -1;
	if (strcmp(c->icap_oversize, "block") != 0 && strcmp(c->icap_oversize, "pass") != 0) {
		snprintf(err, errlen, "ICAP_OVERSIZE: '%.40s' is neither block nor pass", c->icap_oversize);
		return -1;
	}
	if (c->icap_port != 0 && c->icap_port == c->port) {
		snprintf(err, errlen, "ICAP_PORT: %u is PORT's too", c->icap_port);
		return -1;
	}
	if (c->max_scan_size < c->max_content_length) {
		snprintf(err, errlen, "MAX_SCAN_SIZE: must cover MAX_CONTENT_LENGTH (%llu)",
		    c->max_content_length);
		return -1;
	}
	/* An upload larger than MAX_FILE_SIZE could never be scanned: it would always be refused as
	 * over a limit. (A member cut short at MAX_FILE_SIZE is caught by the scanner.) */
	if (c->max_file_size < c->max_content_length) {
		snprintf(err, errlen, "MAX_FILE_SIZE: must cover MAX_CONTENT_LENGTH (%llu)",
		    c->max_content_length);
		return -1;
	}
	return 0;
}

/* A folder the service writes to must exist and be writable by it, or the first upload to need it
 * would fail at run time. */
static int
config_check_dir(const char *setting, const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int e = 0;

	if (dir == NULL)
		return 0;
	if (stat(dir, &st) != 0)
		e = errno;
	else if (!S_ISDIR(st.st_mode))
		e = ENOTDIR;
	else if (access(dir, W_OK | X_OK) != 0)
		e = errno;
	if (e == 0)
		return 0;
	snprintf(err, errlen, "%s: cannot use '%.200s': %s", setting, dir, strerror(e));
	return -1;
}

/* BODY_DISK's default: a share of the space free in TMPDIR now. */
static void
config_derive_disk(struct config *c)
{
	struct statvfs vfs;

	if (c->body_disk != 0)
		return;
	if (statvfs(c->tmpdir, &vfs) == 0)
		c->body_disk = (unsigned long long)vfs.f_bavail * vfs.f_frsize / CONFIG_DISK_SHARE;
}

int
config_load(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	int rc;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONFIG_NOPTS; i++) {
		const struct config_opt *o = &config_opts[i];
		const char *val = getenv(o->env);

		if (val == NULL || (val[0] == '\0' && o->type != CT_STR))
			val = o->def;
		if (val != NULL && config_set(c, o, val, err, errlen) != 0)
			return -1;
	}
	if ((rc = config_args(c, argc, argv, err, errlen)) != 0)
		return rc;
	config_derive(c);
	if (config_check(c, err, errlen) != 0 ||
	    config_check_dir("TMPDIR", c->tmpdir, err, errlen) != 0 ||
	    config_check_dir("SCAN_TMPDIR", c->scan_tmpdir, err, errlen) != 0)
		return -1;
	config_derive_disk(c);
	return 0;
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < CONFIG_NOPTS; i++) {
		if (config_opts[i].type == CT_STR) {
			char **s = (char **)(void *)((char *)c + config_opts[i].offset);

			free(*s);
			*s = NULL;
		}
	}
}

static void
config_usage(FILE *out)
{
	fprintf(out, "usage: clamrest [--option value ...]\n"
	    "       clamrest hash-password   (reads a password, prints an APPLICATION_USERS hash)\n\n"
	    "Every option can also be set by the environment variable shown; flags win.\n"
	    "[default] (range of a number; yes|no: also true/false, on/off, 1/0)\n\n");
	int fw = 0, ew = 0;

	for (size_t i = 0; i < CONFIG_NOPTS; i++) {	/* columns as wide as their longest entry */
		if ((int)strlen(config_opts[i].flag) > fw)
			fw = (int)strlen(config_opts[i].flag);
		if ((int)strlen(config_opts[i].env) > ew)
			ew = (int)strlen(config_opts[i].env);
	}
	for (size_t i = 0; i < CONFIG_NOPTS; i++) {
		const struct config_opt *o = &config_opts[i];

		fprintf(out, "  --%-*s  %-*s  %s", fw, o->flag, ew, o->env, o->help);
		if (o->def != NULL && o->def[0] != '\0')
			fprintf(out, " [%s]", o->def);
		if (o->type == CT_BOOL)
			fprintf(out, " (yes|no)");
		else if (o->type != CT_STR)
			fprintf(out, " (%llu-%llu)", o->min, o->max);
		fputc('\n', out);
	}
}
