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

static enum log_level log_threshold = LOG_LVL_INFO;

static const char *const log_names[] = { "DEBUG", "INFO", "WARNING", "ERROR" };

int
log_set_level(const char *name)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(name, log_names[i]) == 0) {
			log_threshold = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "WARN") == 0) {
		log_threshold = LOG_LVL_WARNING;
		return 0;
	}
	return -1;
}

int
log_enabled(enum log_level lvl)
{
	return lvl >= log_threshold;
}

/* Starts a line: {"@timestamp":"...","log.level":"..." */
static size_t
log_begin(char *buf, size_t len, enum log_level lvl)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf, len, "{\"@timestamp\":\"%s.%03ldZ\",\"log.level\":\"%s\"", stamp,
	    ts.tv_nsec / 1000000, log_names[lvl]);
	return n < 0 ? 0 : (size_t)n;
}

/* Ends a line and writes it with one write(2), so lines from many threads never interleave. */
static void
log_end(char *buf, size_t len, size_t pos, enum log_level lvl)
{
	if (pos + 3 > len)
		pos = len - 3;
	buf[pos++] = '}';
	buf[pos++] = '\n';
	if (write(lvl >= LOG_LVL_WARNING ? STDERR_FILENO : STDOUT_FILENO, buf, pos) < 0) {
		/* nowhere left to report it */
	}
}

static void
log_field(char *buf, size_t len, size_t *pos, const char *key, const char *val)
{
	size_t p = *pos;

	if (val == NULL || p + strlen(key) + 4 >= len)
		return;
	p += (size_t)snprintf(buf + p, len - p, ",\"%s\":", key);
	if (util_json_str(buf, len - 3, &p, val, strlen(val)) == 0)
		*pos = p;
}

static void
log_vmsg(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	char buf[LOG_LINE_MAX], msg[LOG_LINE_MAX / 2];
	size_t pos;
	int n;

	if (!log_enabled(lvl))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= 0 && err != 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
	pos = log_begin(buf, sizeof(buf), lvl);
	log_field(buf, sizeof(buf), &pos, "message", msg);
	log_end(buf, sizeof(buf), pos, lvl);
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

void
log_access(const struct log_access *a)
{
	enum log_level lvl = a->status >= 500 ? LOG_LVL_ERROR : LOG_LVL_INFO;
	char buf[LOG_LINE_MAX], msg[256];
	size_t pos;

	if (!log_enabled(lvl))
		return;
	snprintf(msg, sizeof(msg), "%s %s %d", a->method ? a->method : "-",
	    a->path ? a->path : "-", a->status);
	pos = log_begin(buf, sizeof(buf), lvl);
	log_field(buf, sizeof(buf), &pos, "message", msg);
	log_field(buf, sizeof(buf), &pos, "http.request.method", a->method);
	log_field(buf, sizeof(buf), &pos, "url.path", a->path);
	pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos,
	    ",\"http.response.status_code\":%d,\"event.duration\":%lld", a->status,
	    (long long)(a->duration * 1e9));
	log_field(buf, sizeof(buf), &pos, "labels.user", a->user);
	log_field(buf, sizeof(buf), &pos, "source.ip", a->source_ip);
	log_field(buf, sizeof(buf), &pos, "trace.id", a->trace_id);
	log_field(buf, sizeof(buf), &pos, "labels.verdict", a->verdict);
	log_end(buf, sizeof(buf), pos, lvl);
}
