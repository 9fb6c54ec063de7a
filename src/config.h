/* config.h -- settings from the environment (upstream dit-clamav-rest names) and equal command-line
 * flags; every limit of the service is here with its unit and default.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_CONFIG_H
#define CLAMREST_CONFIG_H

#include <stddef.h>

#define CONFIG_VERSION "1.0.0"	/* clamrest --version, and "service" in /check_version */

struct config {
	char *host;
	unsigned port;
	char *users;			/* APPLICATION_USERS, as given */
	unsigned auth_threads;		/* threads running PBKDF2 for passwords not in the cache */
	unsigned auth_queue;		/* passwords waiting for those threads before 503 */
	unsigned auth_fail_rate;	/* failed checks a minute a client address regains; 0: off */
	unsigned auth_fail_burst;	/* failed checks a client address may make at once */
	unsigned long long max_content_length;	/* bytes */
	unsigned max_files_per_request;	/* file parts of one /v3/scan */
	char *db_dir;
	char *txt_uri;			/* "": no DNS comparison */
	char *dns_server;		/* NULL: the system resolver */
	char *log_level;
	char *log_format;		/* "json" or "text" */
	char *trusted_proxies;		/* TRUSTED_PROXIES, as given; "": none */
	char *tmpdir;
	char *scan_tmpdir;		/* NULL: a tmpfs when big enough, else tmpdir */
	unsigned request_timeout;	/* seconds without progress before a connection is closed */
	unsigned scan_threads;
	unsigned scan_queue;		/* finished uploads waiting for a scan thread */
	unsigned scan_queue_timeout;	/* seconds one may wait */
	unsigned io_threads;		/* HTTP threads */
	unsigned max_connections;
	unsigned min_upload_rate;	/* bytes per second, averaged, after the grace period */
	unsigned long long spill_threshold;	/* bytes kept in memory before a body goes to a file */
	unsigned long long body_memory;	/* bytes all bodies may hold in memory */
	unsigned long long body_disk;	/* bytes all bodies may hold in TMPDIR files */
	unsigned db_check_interval;	/* seconds between checks of CLAMAV_DB_DIR for changes */
	unsigned db_max_age;		/* seconds past the build time the database is current; 0: any age */
	unsigned db_wait;		/* 1: start without a database and wait for one */
	char *reload_mode;		/* RELOAD_MODE: "concurrent" or "low-memory" */
	unsigned long long max_scan_size;	/* bytes */
	unsigned long long max_file_size;	/* bytes */
	unsigned max_recursion;
	unsigned max_files;
	unsigned max_scan_time;		/* milliseconds */
	unsigned max_expansion;		/* bytes unpacked per byte uploaded */
	unsigned scan_cache;		/* clean verdicts remembered */
	unsigned member_cache;		/* clean archive members remembered */
	/* Scan policy, clamd.conf's meaning; each 0 or 1 unless a string. */
	unsigned alert_encrypted, alert_encrypted_archive, alert_encrypted_doc, alert_exceeds_max;
	unsigned detect_pua;
	char *pua_include, *pua_exclude;	/* one PUA category each; "": none */
	unsigned heuristic_alerts, alert_broken_executables, alert_ole2_macros;
	unsigned alert_phishing_ssl_mismatch, alert_phishing_cloak;
	unsigned scan_pe, scan_elf, scan_ole2, scan_pdf, scan_swf, scan_html, scan_xmldocs, scan_hwp3;
	unsigned scan_onenote, scan_archive, scan_mail, scan_image, scan_image_fuzzy_hash;
	/* Upload policy (filepolicy.h); strings as given. */
	char *allow_types, *deny_types, *policy_depth, *policy_mode, *policy_file;
	unsigned block_extension_mismatch;
	unsigned shutdown_grace;	/* seconds requests in progress get after SIGTERM */
	char *tls_cert;
	char *tls_key;
	unsigned icap_port;		/* 0: no ICAP service */
	char *icap_host;
	unsigned icap_preview;		/* bytes of preview asked in OPTIONS */
	char *icap_template;		/* NULL: the built-in 403 page */
	char *icap_oversize;		/* "block" or "pass" */
};

/* Fills c from the environment, then argv. Returns 0, 1 when --help or --version was answered
 * (the caller exits 0), or -1 with one line naming the bad setting in err. */
int config_load(struct config *c, int argc, char **argv, char *err, size_t errlen);
void config_free(struct config *c);

#endif
