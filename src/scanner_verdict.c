/* scanner_verdict.c -- the verdict rules: the one place that says when a scan's answer may be clean
 * (scanner_verdict), and every other verdict the scanner gives (a cached clean, no engine, a file
 * skipped at a limit). No other file sets a result clean (tests/e2e/test_verdict_place.py). */
#include "scanner_priv.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* libclamav reports some failures only through its message callback and then answers CLEAN (1.4.6:
 * a scan whose temporary folder cannot be made is not scanned at all; an archive member it failed to
 * write is skipped with a warning). An error or a warning logged by the scanning thread during its
 * scan turns a clean verdict into an error. */
static _Thread_local int scanner_errors;
static _Thread_local int scanner_in_scan;
static _Thread_local char scanner_errmsg[160];

void
scanner_clmsg(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx)
{
	size_t len = strlen(msg);

	(void)fullmsg;
	(void)ctx;
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		len--;
	if (severity == CL_MSG_ERROR)
		log_errorx("libclamav: %.*s", (int)len, msg);
	else if (severity == CL_MSG_WARN)
		log_warnx("libclamav: %.*s", (int)len, msg);
	else
		log_debug("libclamav: %.*s", (int)len, msg);
	if (scanner_in_scan && (severity == CL_MSG_ERROR || severity == CL_MSG_WARN) &&
	    scanner_errors++ == 0)
		snprintf(scanner_errmsg, sizeof(scanner_errmsg), "libclamav: %.*s", (int)len, msg);
}

void
scanner_errors_begin(void)
{
	scanner_errors = 0;
	scanner_in_scan = 1;
}

void
scanner_errors_end(void)
{
	scanner_in_scan = 0;
}

static const char *
scanner_limit_name(cl_error_t rc)
{
	switch (rc) {
	case CL_ETIMEOUT: return SCANNER_LIMIT_TIME;
	case CL_EMAXSIZE: return SCANNER_LIMIT_SCAN_SIZE;
	case CL_EMAXFILES: return "Heuristics.Limits.Exceeded.MaxFiles";
	case CL_EMAXREC: return "Heuristics.Limits.Exceeded.MaxRecursion";
	default: return NULL;
	}
}

/* The name libclamav gives a scan that a callback of ours stopped by answering CL_VIRUS. */
#define SCANNER_CALLBACK_VIRNAME "Detected.By.Callback"

/* ALERT_EXCEEDS_MAX=no: a scan cut short at a limit gets the verdict of what was scanned before the
 * cut, as clamd gives it with AlertExceedsMax off: clean when nothing was found. It is never
 * cached, and logged and counted, so an operator sees what the setting lets through. */
static int
scanner_cut_clean(struct scanner *s, const char *limit, struct scan_result *r)
{
	r->verdict = SCAN_CLEAN;
	r->reason[0] = '\0';
	atomic_fetch_add(&s->cut_clean, 1);
	log_warnx("scan cut short at %s answered clean: ALERT_EXCEEDS_MAX is off", limit);
	return 0;
}

void
scanner_skipped(struct scanner *s, const char *limit, struct scan_detail *d, struct scan_result *r)
{
	*r = (struct scan_result){ .verdict = SCAN_MALWARE, .limit_exceeded = 1 };
	snprintf(r->reason, sizeof(r->reason), "%s", limit);
	if (!s->o.policy.alert_exceeds_max) {
		r->limit_exceeded = 0;
		scanner_cut_clean(s, limit, r);
		if (d != NULL)
			d->cut = 1;
	} else if (d != NULL) {
		scanner_detail_skipped(d, limit);
	}
}

/* A clean verdict remembered for the same bytes and engine (scanner_cache.c): only complete scans
 * are remembered, so it is the verdict scanner_verdict gave them. */
void
scanner_verdict_cached(struct scan_result *r)
{
	r->verdict = SCAN_CLEAN;
	r->limit_exceeded = 0;
	r->reason[0] = '\0';
}

/* No engine (a low-memory reload is loading): never a verdict without an engine. */
void
scanner_verdict_unavailable(struct scanner *s, size_t len, struct scan_result *r)
{
	r->unavailable = 1;
	r->verdict = SCAN_ERROR;
	r->limit_exceeded = 0;
	r->cached = 0;
	r->hashed = 0;
	r->bytes = len;
	r->seconds = 0;
	r->retry_after = scanner_retry_after(s);
	snprintf(r->reason, sizeof(r->reason), "the signature database is reloading "
	    "(RELOAD_MODE=low-memory)");
}

/* The one place that decides a verdict. A file is clean only when libclamav says so, logged no error
 * or warning meanwhile, met no limit (its own or scanner_inspect's) and never ran short of temporary
 * space; a limit is malware, never clean (unless ALERT_EXCEEDS_MAX is off: scanner_cut_clean).
 * Members listed but not scanned (Heuristics.Unscanned.*) are malware whatever ALERT_EXCEEDS_MAX
 * says: they are holes in libclamav's readers, not limits an operator chose. Returns 1 when the
 * verdict is complete enough to cache. */
int
scanner_verdict(cl_error_t rc, const char *virname, const struct scan_state *st,
    struct scanner *s, struct scan_result *r)
{
	const char *limit = scanner_limit_name(rc);
	int alert_limits = s->o.policy.alert_exceeds_max;
	/* A signature matched, as opposed to scanner_inspect stopping the scan (libclamav names that
	 * "Detected.By.Callback.Inspection"). With all-matches on, the scan goes on after a match and
	 * may then meet a limit: rc is CL_VIRUS with the first match's name. */
	int found = rc == CL_VIRUS && virname != NULL &&
	    strncmp(virname, SCANNER_CALLBACK_VIRNAME, strlen(SCANNER_CALLBACK_VIRNAME)) != 0;

	r->limit_exceeded = 0;
	r->verdict = SCAN_ERROR;
	/* Only a scan that found nothing and failed at nothing may be answered clean past a limit. */
	if (!alert_limits && !found && !st->tmp_full && (st->limit != NULL || limit != NULL) &&
	    scanner_errors == 0)
		return scanner_cut_clean(s, st->limit != NULL ? st->limit : limit, r);
	if (st->tmp_full || (rc == CL_CLEAN && st->limit == NULL && scanner_dir_low(s->tmpdir))) {
		snprintf(r->reason, sizeof(r->reason), "the temporary folder %.200s is full", s->tmpdir);
		log_errorx("scan not trusted: %s (less than %u bytes free)", r->reason,
		    SCANNER_TMP_LOW_WATER);
	} else if (st->limit != NULL && (rc == CL_CLEAN || (rc == CL_VIRUS && (alert_limits || !found)))) {
		r->verdict = SCAN_MALWARE;
		r->limit_exceeded = 1;
		snprintf(r->reason, sizeof(r->reason), "%s", st->limit);
	} else if (st->layers == NULL && rc == CL_CLEAN) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
	} else if (st->unscanned != NULL && rc == CL_CLEAN) {
		r->verdict = SCAN_MALWARE;
		/* An encrypted member (the second reader's) is a verdict as libclamav's own, not a cut. */
		r->limit_exceeded = strncmp(st->unscanned, "Heuristics.Encrypted.", 21) != 0;
		snprintf(r->reason, sizeof(r->reason), "%s", st->unscanned);
	} else if (rc == CL_CLEAN && scanner_errors > 0) {
		snprintf(r->reason, sizeof(r->reason), "%s", scanner_errmsg);
	} else if (rc == CL_CLEAN) {
		r->verdict = SCAN_CLEAN;
		r->reason[0] = '\0';
		return 1;
	} else if (rc == CL_VIRUS) {
		r->verdict = SCAN_MALWARE;
		snprintf(r->reason, sizeof(r->reason), "%s", virname ? virname : "Unknown");
		r->limit_exceeded = strncmp(r->reason, "Heuristics.Limits.Exceeded", 26) == 0;
	} else if (limit != NULL) {
		r->verdict = SCAN_MALWARE;
		r->limit_exceeded = 1;
		snprintf(r->reason, sizeof(r->reason), "%s", limit);
	} else {
		snprintf(r->reason, sizeof(r->reason), "%s", cl_strerror(rc));
	}
	return 0;
}

