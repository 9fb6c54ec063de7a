/* log.c -- structured logging: one JSON object per line, info to stdout, warnings and errors to stderr. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LOG_LINE_MAX 4096	/* bytes; longer messages are cut */

/* The threshold is a number as Python's logging has them (DEBUG 10 ... CRITICAL 50): upstream reads
 * LOGGING_LEVEL with logger.setLevel, and a message shows when its level is at least this. */
#define LOG_PY_DEBUG	10
#define LOG_PY_MAX	1000	/* a numeric level above every name: nothing is logged */

static long long log_threshold = 20;	/* INFO */

static const char *const log_names[] = { "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" };

static _Thread_local const char *log_request_id;	/* see log_set_request */

/* Every name logging._nameToLevel holds. Python matches them in capitals only; any case is
 * accepted here, as clamrest always did. */
static const struct { const char *name; int level; } log_py_names[] = {
	{ "NOTSET", 0 }, { "DEBUG", 10 }, { "INFO", 20 }, { "WARN", 30 }, { "WARNING", 30 },
	{ "ERROR", 40 }, { "FATAL", 50 }, { "CRITICAL", 50 },
};

int
log_set_level(const char *name)
{
	long long v;

	for (size_t i = 0; i < sizeof(log_py_names) / sizeof(log_py_names[0]); i++) {
		if (strcasecmp(name, log_py_names[i].name) == 0) {
			log_threshold = log_py_names[i].level;
			return 0;
		}
	}
	/* A number, as logger.setLevel takes (logging.DEBUG is 10). */
	if (util_parse_ll(name, 0, LOG_PY_MAX, &v) != 0)
		return -1;
	log_threshold = v;
	return 0;
}

int
log_enabled(enum log_level lvl)
{
	return LOG_PY_DEBUG * ((long long)lvl + 1) >= log_threshold;
}

/* A line being built; once full, further fields are dropped, never cut in the middle. */
struct line {
	char buf[LOG_LINE_MAX];
	size_t pos;
};

#define LINE_RESERVE 3	/* "}\n" and a NUL */

static void
line_raw(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
line_raw(struct line *l, const char *fmt, ...)
{
	size_t room = sizeof(l->buf) - LINE_RESERVE - l->pos;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->pos, room + 1, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n <= room)
		l->pos += (size_t)n;
	else
		l->buf[l->pos] = '\0';
}

/* Adds "key":"value"; a value too long for the line is cut to what fits. */
static void
line_field(struct line *l, const char *key, const char *val)
{
	size_t start = l->pos, len, room, p;

	if (val == NULL)
		return;
	line_raw(l, ",\"%s\":", key);
	if (l->pos == start)
		return;
	len = strlen(val);
	room = sizeof(l->buf) - LINE_RESERVE - l->pos;
	if (room < 3) {
		l->pos = start;
		return;
	}
	/* An escaped byte takes at most 6; cut the value until it surely fits. */
	if (len > (room - 2) / 6 && len > room - 2)
		len = room - 2;
	p = l->pos;
	while (util_json_str(l->buf, sizeof(l->buf) - LINE_RESERVE + 1, &p, val, len) != 0) {
		len = len > (room - 2) / 6 ? len / 2 : len - 1;
		p = l->pos;
	}
	l->pos = p;
}

/* Starts a line: {"@timestamp":"...","log.level":"...","http.request.id":"..." */
static void
line_begin(struct line *l, enum log_level lvl, const char *id)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	l->pos = 0;
	line_raw(l, "{\"@timestamp\":\"%s.%03ldZ\",\"log.level\":\"%s\"", stamp,
	    ts.tv_nsec / 1000000, log_names[lvl]);
	line_field(l, "http.request.id", id);
}

/* Ends a line and writes it with one write(2), so lines from many threads never interleave. */
static void
line_end(struct line *l, enum log_level lvl)
{
	l->buf[l->pos++] = '}';
	l->buf[l->pos++] = '\n';
	if (write(lvl >= LOG_LVL_WARNING ? STDERR_FILENO : STDOUT_FILENO, l->buf, l->pos) < 0) {
		/* nowhere left to report it */
	}
}

static void
log_vmsg(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	struct line l;
	int n;

	if (lvl != LOG_LVL_CRITICAL && !log_enabled(lvl))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= 0 && err != 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
	line_begin(&l, lvl, log_request_id);
	line_field(&l, "message", msg);
	line_end(&l, lvl);
}

void
log_set_request(const char *id)
{
	log_request_id = id;
}

#define LOG_DEFINE(name, lvl, use_errno)				\
	void								\
	name(const char *fmt, ...)					\
	{								\
		int saved = errno;					\
		va_list ap;						\
									\
		va_start(ap, fmt);					\
		log_vmsg(lvl, use_errno ? saved : 0, fmt, ap);		\
		va_end(ap);						\
		errno = saved;						\
	}

LOG_DEFINE(log_debug, LOG_LVL_DEBUG, 0)
LOG_DEFINE(log_info, LOG_LVL_INFO, 0)
LOG_DEFINE(log_warn, LOG_LVL_WARNING, 1)
LOG_DEFINE(log_warnx, LOG_LVL_WARNING, 0)
LOG_DEFINE(log_error, LOG_LVL_ERROR, 1)
LOG_DEFINE(log_errorx, LOG_LVL_ERROR, 0)
LOG_DEFINE(log_fatalx, LOG_LVL_CRITICAL, 0)

enum log_level
log_access_level(int status, int post)
{
	if (status >= 500)
		return LOG_LVL_ERROR;
	if (status >= 400)
		return LOG_LVL_WARNING;
	return post ? LOG_LVL_INFO : LOG_LVL_DEBUG;
}

void
log_access(const struct log_access *a)
{
	enum log_level lvl = log_access_level(a->status, a->post);
	struct line l;
	char msg[256];

	if (!log_enabled(lvl))
		return;
	snprintf(msg, sizeof(msg), "%s %.200s %d", a->method ? a->method : "-",
	    a->path ? a->path : "-", a->status);
	line_begin(&l, lvl, a->request_id);
	line_field(&l, "message", msg);
	/* Numbers and short fields first: they always fit; client-given strings come last. */
	line_raw(&l, ",\"http.response.status_code\":%d,\"event.duration\":%lld", a->status,
	    (long long)(a->duration * 1e9));
	if (a->post)
		line_raw(&l, ",\"http.request.body.bytes\":%lld", a->body_bytes);
	line_field(&l, "http.request.method", a->method);
	line_field(&l, "url.path", a->path);
	line_field(&l, "source.ip", a->source_ip);
	line_field(&l, "labels.verdict", a->verdict);
	line_field(&l, "file.hash.sha256", a->sha256);
	line_field(&l, "labels.signature", a->signature);
	line_field(&l, "error.message", a->error);
	line_field(&l, "labels.user", a->user);
	line_field(&l, "file.name", a->file_name);
	line_field(&l, "user_agent.original", a->user_agent);
	line_end(&l, lvl);
}
