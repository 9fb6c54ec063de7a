/* main.c -- clamrest: a virus-scanning HTTP service with ClamAV's engine in-process. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "body.h"
#include "config.h"
#include "dnsver.h"
#include "filepolicy.h"
#include "filepolicy_file.h"
#include "icap.h"
#include "log.h"
#include "metrics.h"
#include "scanner.h"
#include "server.h"
#include "util.h"

#define EXIT_CONFIG 2	/* a setting is wrong: nothing was started */
#define MMAP_THRESHOLD (4 * 1024 * 1024)	/* bytes: larger blocks get an mmap of their own */
#define TRIM_THRESHOLD (64 * 1024 * 1024)	/* bytes free at a heap's top before it shrinks */
#define DB_WAIT_TICK_NS (200 * 1000 * 1000)	/* ns between looks at the scanner while it waits */

/* A setting is wrong or a resource cannot be had: one JSON line (CRITICAL, whatever LOGGING_LEVEL
 * says) on stderr, and exit code 2. */
static int
fail_config(const char *err)
{
	log_fatalx("%s", err);
	return EXIT_CONFIG;
}

/* A wrong flag or setting: on a terminal a plain message and where to look, else fail_config's
 * JSON line (logs and service managers read those). */
static int
fail_usage(const char *err)
{
	if (!isatty(STDERR_FILENO))
		return fail_config(err);
	fprintf(stderr, "clamrest: %s\nRun 'clamrest --help' for every option and its environment "
	    "variable.\n", err);
	return EXIT_CONFIG;
}

/* Reads one line from stdin; on a terminal, prompts and does not echo it. */
static int
read_password(char *buf, size_t len)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char *got;

	/* Echo goes off before the prompt shows, and nothing typed is discarded (TCSANOW). */
	if (tty) {
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
		fprintf(stderr, "Password: ");
	}
	got = fgets(buf, (int)len, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	return got == NULL ? -1 : 0;
}

static int
hash_password(void)
{
	char pass[1024], out[256];
	size_t len;
	int rc = 1;

	if (read_password(pass, sizeof(pass)) == 0) {
		len = strcspn(pass, "\r\n");
		if (len > 0 && auth_hash_password(pass, len, AUTH_ROUNDS_DEFAULT, out, sizeof(out)) == 0) {
			printf("%s\n", out);
			rc = 0;
		}
	}
	explicit_bzero(pass, sizeof(pass));
	if (rc != 0)
		log_fatalx("hash-password: no password read");
	return rc;
}

/* Signals are taken by this thread alone, with sigwait: no handler runs inside other code. */
static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Scans and /check are answered once the scanner has a database (at once, or with DB_WAIT when
 * the first one appears). */
static int
go_live(struct server *srv, struct scanner *scanner, const struct config *cfg)
{
	if (!scanner_ready(scanner))
		return 0;
	server_set_scanner(srv, scanner);
	log_info("clamrest ready on %s:%u (libclamav %s from %s, %s)", cfg->host, server_port(srv),
	    scanner_engine_version(), scanner_engine_file(),
	    scanner_engine_patched() ? "patched" : "Debian's, unpatched");
	if (!scanner_engine_patched())
		log_warnx("libclamav is not clamrest's patched build: scans of small files are slower%s%s",
		    scanner_engine_note()[0] != '\0' ? ": " : " (make libclamav, deploy/README.md)",
		    scanner_engine_note());
	return 1;
}

/* The next signal; -1 after DB_WAIT_TICK_NS without one while not live yet, or after poll seconds
 * (0: none) once live. */
static int
next_signal(const sigset_t *set, int live, unsigned poll)
{
	const struct timespec tick = { .tv_nsec = DB_WAIT_TICK_NS };
	const struct timespec every = { .tv_sec = (time_t)poll };
	int sig;

	if (!live)
		return sigtimedwait(set, NULL, &tick);
	if (poll > 0)
		return sigtimedwait(set, NULL, &every);
	return sigwait(set, &sig) == 0 ? sig : -1;
}

/* POLICY_FILE again (SIGHUP, SIGUSR2): a file that does not read keeps the policies in force. */
static void
reload_policy_file(void)
{
	char err[512];

	if (filepolicy_file_reload(err, sizeof(err)) != 0)
		log_errorx("%s; the upload policies in force stay", err);
}

/* The upload policy (ALLOW_TYPES, ..., POLICY_FILE); -1 with one line in err. */
static int
start_policy(const struct config *cfg, char *err, size_t errlen)
{
	struct filepolicy_spec g = { .allow = cfg->allow_types, .deny = cfg->deny_types,
	    .depth = cfg->policy_depth, .mode = cfg->policy_mode,
	    .block_mismatch = cfg->block_extension_mismatch != 0 };

	if (filepolicy_file_init(&g, cfg->policy_file, err, errlen) != 0)
		return -1;
	if (filepolicy_file_active())
		log_info("upload policy: ALLOW_TYPES=%s DENY_TYPES=%s POLICY_DEPTH=%s "
		    "BLOCK_EXTENSION_MISMATCH=%s POLICY_MODE=%s POLICY_FILE=%s", cfg->allow_types,
		    cfg->deny_types, cfg->policy_depth, cfg->block_extension_mismatch ? "yes" : "no",
		    cfg->policy_mode, cfg->policy_file);
	return 0;
}

static void
serve_until_signal(const sigset_t *set, struct scanner *scanner, struct server *srv,
    const struct config *cfg)
{
	int sig, live = go_live(srv, scanner, cfg);

	if (!live)
		log_info("clamrest listening on %s:%u; /check and scans answer 503 until a signature "
		    "database appears in %s (DB_WAIT)", cfg->host, server_port(srv), cfg->db_dir);
	for (;;) {
		/* POLICY_FILE is looked at every DB_CHECK_INTERVAL, as the database folder is. */
		sig = next_signal(set, live, cfg->policy_file[0] != '\0' ? cfg->db_check_interval : 0);
		if (!live)
			live = go_live(srv, scanner, cfg);
		if (sig < 0 && live && filepolicy_file_changed())
			reload_policy_file();
		if (sig < 0)
			continue;
		if (sig == SIGUSR2 || sig == SIGHUP) {
			log_info("signal %d: checking the database folder", sig);
			scanner_poke(scanner);
			reload_policy_file();
			continue;
		}
		log_info("signal %d: shutting down", sig);
		return;
	}
}

/* Upload bodies held in memory share BODY_MEMORY, files in TMPDIR share BODY_DISK.
 *
 * glibc's malloc, two quirks. Its mmap threshold is dynamic and rises (up to 32 MiB) each time a
 * larger mapped block is freed, after which body buffers came from the heap arenas, which kept them
 * after the bodies were freed (437 MB of 1.8 GB stayed after a burst): body.c now maps its large
 * buffers itself. And with a small threshold (128 KiB, which this used to set to avoid the first),
 * every scan with a large database maps, faults in and unmaps libclamav's per-scan arrays (8 bytes
 * per logical and multi-part signature, per matcher root: megabytes), and each munmap in a
 * threaded process interrupts the other cores to flush their TLBs: 0.34 ms of CPU per EICAR request
 * with a real-size database, 0.12 ms with the thresholds below (make bench-real; wrk -c 4).
 * Fixed thresholds keep those arrays in the arenas from one scan to the next; a heap shrinks when
 * more than TRIM_THRESHOLD is free at its top. GLIBC_TUNABLES with glibc.malloc settings wins. */
static void
limit_bodies(const struct config *cfg)
{
	const char *tunables = getenv("GLIBC_TUNABLES");

	if (tunables == NULL || strstr(tunables, "glibc.malloc.") == NULL) {
		mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
		mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
	}
	char mem[UTIL_BYTES_MAX], disk[UTIL_BYTES_MAX];

	body_set_budget(cfg->body_memory, cfg->body_disk);
	util_bytes(cfg->body_memory, mem, sizeof(mem));
	util_bytes(cfg->body_disk, disk, sizeof(disk));
	log_info("uploads in progress may hold %s in memory (BODY_MEMORY, %llu bytes) and %s in %s "
	    "(BODY_DISK, %llu bytes)", mem, cfg->body_memory, disk, cfg->tmpdir, cfg->body_disk);
}

/* The TXT record lookup, unless CLAMAV_TXT_URI is empty (air-gapped: no DNS traffic at all). */
static int
start_dnsver(const struct config *cfg, struct dnsver **d, char *err, size_t errlen)
{
	if (cfg->txt_uri[0] == '\0') {
		log_info("CLAMAV_TXT_URI is empty: no DNS lookup; the database is outdated only past "
		    "DB_MAX_AGE (%u s%s)", cfg->db_max_age, cfg->db_max_age == 0 ? ": never" : "");
		return 0;
	}
	if ((*d = dnsver_new(cfg->txt_uri, cfg->dns_server, err, errlen)) == NULL)
		return -1;
	if (cfg->db_max_age > 0)
		log_info("the database is also outdated %u s past its build time (DB_MAX_AGE)",
		    cfg->db_max_age);
	return 0;
}

/* The scan policy settings, as the scanner takes them; logged as one line at start. */
static struct scanner_policy
scan_policy(const struct config *cfg)
{
	struct scanner_policy p = {
		.alert_encrypted = cfg->alert_encrypted != 0,
		.alert_encrypted_archive = cfg->alert_encrypted_archive != 0,
		.alert_encrypted_doc = cfg->alert_encrypted_doc != 0,
		.alert_exceeds_max = cfg->alert_exceeds_max != 0,
		.detect_pua = cfg->detect_pua != 0,
		.pua_include = cfg->pua_include,
		.pua_exclude = cfg->pua_exclude,
		.heuristic_alerts = cfg->heuristic_alerts != 0,
		.alert_broken_executables = cfg->alert_broken_executables != 0,
		.alert_ole2_macros = cfg->alert_ole2_macros != 0,
		.alert_phishing_ssl_mismatch = cfg->alert_phishing_ssl_mismatch != 0,
		.alert_phishing_cloak = cfg->alert_phishing_cloak != 0,
		.scan_pe = cfg->scan_pe != 0,
		.scan_elf = cfg->scan_elf != 0,
		.scan_ole2 = cfg->scan_ole2 != 0,
		.scan_pdf = cfg->scan_pdf != 0,
		.scan_swf = cfg->scan_swf != 0,
		.scan_html = cfg->scan_html != 0,
		.scan_xmldocs = cfg->scan_xmldocs != 0,
		.scan_hwp3 = cfg->scan_hwp3 != 0,
		.scan_onenote = cfg->scan_onenote != 0,
		.scan_archive = cfg->scan_archive != 0,
		.scan_mail = cfg->scan_mail != 0,
		.scan_image = cfg->scan_image != 0,
		.scan_image_fuzzy_hash = cfg->scan_image_fuzzy_hash != 0,
	};
	char json[1024];

	if (scanner_policy_json(&p, json, sizeof(json)) == 0)
		log_info_object("scan policy", "clamrest.policy", json);
	if (!p.alert_exceeds_max)
		log_warnx("ALERT_EXCEEDS_MAX is off: a scan cut short by a limit is answered by what was "
		    "scanned before the cut");
	if (!p.scan_archive)
		log_warnx("SCAN_ARCHIVE is off: nothing inside an archive is scanned");
	return p;
}

static struct scanner *
load_scanner(const struct config *cfg, char *err, size_t errlen)
{
	const char *tmp = cfg->scan_tmpdir != NULL ? cfg->scan_tmpdir :
	    scanner_pick_tmpdir(cfg->tmpdir, 2ULL * cfg->scan_threads * cfg->max_file_size);
	struct scanner_opts so = {
		.db_dir = cfg->db_dir,
		.tmpdir = tmp,
		.tmpdir_setting = cfg->scan_tmpdir != NULL ? "SCAN_TMPDIR" :
		    tmp == cfg->tmpdir ? "TMPDIR, SCAN_TMPDIR unset" : "SCAN_TMPDIR unset: " SCANNER_TMPFS,
		.max_scan_size = cfg->max_scan_size,
		.max_file_size = cfg->max_file_size,
		.max_recursion = cfg->max_recursion,
		.max_files = cfg->max_files,
		.max_scan_time = cfg->max_scan_time,
		.max_expansion = cfg->max_expansion,
		.cache_entries = cfg->scan_cache,
		.member_entries = cfg->member_cache,
		.check_interval = cfg->db_check_interval,
		.wait = cfg->db_wait != 0,
		.policy = scan_policy(cfg),
		.low_memory_reload = strcmp(cfg->reload_mode, "low-memory") == 0,
	};

	return scanner_new(&so, err, errlen);
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct auth *auth = NULL;
	struct dnsver *dnsver = NULL;
	struct scanner *scanner = NULL;
	struct server *srv = NULL;
	struct icap *icap = NULL;
	char err[512];
	sigset_t set;
	double end;
	int rc;

	if (argc > 1 && strcmp(argv[1], "hash-password") == 0)
		return hash_password();
	if ((rc = config_load(&cfg, argc, argv, err, sizeof(err))) != 0) {
		config_free(&cfg);
		return rc > 0 ? 0 : fail_usage(err);
	}
	if (log_set_format(cfg.log_format) != 0) {
		config_free(&cfg);
		return fail_config("LOG_FORMAT: use json or text");
	}
	if (log_set_level(cfg.log_level) != 0) {
		config_free(&cfg);
		return fail_config("LOGGING_LEVEL: use a level name of Python's logging (DEBUG, INFO, "
		    "WARNING, ERROR, CRITICAL, ...) or a number from 0 to 1000");
	}
	block_signals(&set);
	metrics_start(cfg.max_scan_time / 1000.0);
	limit_bodies(&cfg);
	rc = EXIT_CONFIG;
	/* The database loads first, while this is the only thread. glibc quirk: stdio skips its
	 * per-call stream locks until the first pthread_create, and libclamav reads text databases
	 * a line at a time through stdio; with our threads already up that locking was most of the
	 * load (a 7.5M-signature text database: 2x clamd's start). Nothing listens until the engine
	 * is ready (a refused connection is an honest "not ready"); with DB_WAIT and no database yet,
	 * the server starts at once and answers 503 until one loads (then with the locks). */
	if (start_policy(&cfg, err, sizeof(err)) != 0 ||
	    (scanner = load_scanner(&cfg, err, sizeof(err))) == NULL ||
	    (auth = auth_new(cfg.users, err, sizeof(err))) == NULL ||
	    start_dnsver(&cfg, &dnsver, err, sizeof(err)) != 0 ||
	    (srv = server_start(&cfg, auth, dnsver, scanner_ready(scanner) ? scanner : NULL, err,
	    sizeof(err))) == NULL ||
	    (cfg.icap_port != 0 && (icap = icap_start(&cfg, scanner, server_pool(srv), err,
	    sizeof(err))) == NULL)) {
		fail_config(err);
		goto out;
	}
	if (auth_user_count(auth) == 0)
		log_warnx("APPLICATION_USERS is empty: every scan will be refused with 401");
	serve_until_signal(&set, scanner, srv, &cfg);
	icap_drain(icap);
	server_drain(srv);
	rc = 0;
out:
	/* One SHUTDOWN_GRACE for both fronts: both drain from the signal on, so their requests run
	 * to the same end. ICAP's end first: they use the HTTP side's scan pool, which server_stop
	 * stops. */
	end = util_now() + cfg.shutdown_grace;
	if (icap_stop(icap, end) != 0)
		icap = NULL;	/* threads still use it: left alone */
	if (server_stop(srv, end) != 0) {
		/* Scans still run in libclamav: they are abandoned, not waited for (SHUTDOWN_GRACE). */
		fflush(NULL);
		_exit(rc);
	}
	scanner_free(scanner);
	dnsver_free(dnsver);
	auth_free(auth);
	filepolicy_file_free();
	config_free(&cfg);
	return rc;
}
