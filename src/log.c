/* log.c -- structured logging: one JSON object per line (or, with LOG_FORMAT=text, one line a person
 * reads), info to stdout, warnings and errors to stderr. */
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
static int log_text;			/* LOG_FORMAT=text */

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
log_set_format(const char *name)
{
	if (strcasecmp(name, "json") == 0)
		log_text = 0;
	else if (strcasecmp(name, "text") == 0)
		log_text = 1;
	else
		return -1;
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

/* Text: adds val, in double quotes when bare it could be misread (empty, a space, a quote, '=');
 * control bytes and quotes escaped so a line stays one line. quote 0: never quoted (a message). */
static void
line_text(struct line *l, const char *val, int quote)
{
	size_t room = sizeof(l->buf) - LINE_RESERVE - 1;
	int q = quote && (val[0] == '\0' || strpbrk(val, " \"=\\\t") != NULL);

	if (q && l->pos < room)
		l->buf[l->pos++] = '"';
	for (const unsigned char *p = (const unsigned char *)val; *p != '\0' && l->pos + 6 < room;
	    p++) {
		if (*p < 0x20 || *p == 0x7f)
			l->pos += (size_t)snprintf(l->buf + l->pos, 5, "\\x%02x", *p);
		else if (q && (*p == '"' || *p == '\\'))
			l->pos += (size_t)snprintf(l->buf + l->pos, 3, "\\%c", *p);
		else
			l->buf[l->pos++] = (char)*p;
	}
	if (q && l->pos < room)
		l->buf[l->pos++] = '"';
	l->buf[l->pos] = '\0';
}

/* A field: "key":"value" in JSON, " name=value" in text. */
static void
line_kv(struct line *l, const char *key, const char *name, const char *val)
{
	if (!log_text) {
		line_field(l, key, val);
	} else if (val != NULL) {
		line_raw(l, " %s=", name);
		line_text(l, val, 1);
	}
}

/* Starts a line: {"@timestamp":"...","log.level":"..." or, in text, "time LEVEL". */
static void
line_begin(struct line *l, enum log_level lvl)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	l->pos = 0;
	if (log_text)
		line_raw(l, "%s.%03ldZ %-7s ", stamp, ts.tv_nsec / 1000000, log_names[lvl]);
	else
		line_raw(l, "{\"@timestamp\":\"%s.%03ldZ\",\"log.level\":\"%s\"", stamp,
		    ts.tv_nsec / 1000000, log_names[lvl]);
}

/* Ends a line and writes it with one write(2), so lines from many threads never interleave. */
static void
line_end(struct line *l, enum log_level lvl)
{
	if (!log_text)
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
	line_begin(&l, lvl);
	if (log_text) {
		line_text(&l, msg, 0);
		line_kv(&l, NULL, "id", log_request_id);
	} else {
		line_field(&l, "http.request.id", log_request_id);
		line_field(&l, "message", msg);
	}
	line_end(&l, lvl);
}

/* Text: "k":v,"k2":"s" becomes k=v k2="s" (strings keep their JSON quotes and escapes). */
static void
line_members_text(struct line *l, const char *json)
{
	size_t room = sizeof(l->buf) - LINE_RESERVE - 1;
	int in_str = 0, key = 1;

	if (l->pos < room)
		l->buf[l->pos++] = ' ';
	for (const char *p = json; *p != '\0' && l->pos < room; p++) {
		if (in_str && *p == '\\' && p[1] != '\0') {
			l->buf[l->pos++] = *p++;
			if (l->pos < room)
				l->buf[l->pos++] = *p;
			continue;
		}
		if (*p == '"') {
			in_str = !in_str;
			if (!key)
				l->buf[l->pos++] = '"';
			continue;
		}
		if (!in_str && *p == ':') {
			l->buf[l->pos++] = '=';
			key = 0;
		} else if (!in_str && *p == ',') {
			l->buf[l->pos++] = ' ';
			key = 1;
		} else {
			l->buf[l->pos++] = *p;
		}
	}
	l->buf[l->pos] = '\0';
}

void
log_info_object(const char *msg, const char *key, const char *members)
{
	struct line l;

	if (!log_enabled(LOG_LVL_INFO))
		return;
	line_begin(&l, LOG_LVL_INFO);
	if (log_text) {
		line_text(&l, msg, 0);
		line_members_text(&l, members);
	} else {
		line_field(&l, "http.request.id", log_request_id);
		line_field(&l, "message", msg);
		/* Only whole members go in: past the line's room the object would be cut. */
		if (strlen(members) + strlen(key) + 8 < sizeof(l.buf) - LINE_RESERVE - l.pos)
			line_raw(&l, ",\"%s\":{%s}", key, members);
	}
	line_end(&l, LOG_LVL_INFO);
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

/* Text: "time LEVEL status method path verdict signature duration id=..." and what else is known. */
static void
log_access_text(struct line *l, const struct log_access *a)
{
	line_raw(l, "%d %s ", a->status, a->method ? a->method : "-");
	line_text(l, a->path ? a->path : "-", 1);
	line_raw(l, " %s ", a->verdict ? a->verdict : "-");
	line_text(l, a->signature ? a->signature : "-", 1);
	line_raw(l, " %.1fms", a->duration * 1e3);
	line_kv(l, NULL, "id", a->request_id);
	line_kv(l, NULL, "error", a->error);
	line_kv(l, NULL, "user", a->user);
	line_kv(l, NULL, "ip", a->source_ip);
	if (a->post)
		line_raw(l, " bytes=%lld", a->body_bytes);
	line_kv(l, NULL, "file", a->file_name);
	line_kv(l, NULL, "sha256", a->sha256);
	line_kv(l, NULL, "ua", a->user_agent);
	line_kv(l, NULL, "protocol", a->protocol);
	line_kv(l, NULL, "istag", a->istag);
	line_kv(l, NULL, "client", a->client_ip);
}

void
log_access(const struct log_access *a)
{
	enum log_level lvl = log_access_level(a->status, a->post);
	struct line l;
	char msg[256];

	if (!log_enabled(lvl))
		return;
	line_begin(&l, lvl);
	if (log_text) {
		log_access_text(&l, a);
		line_end(&l, lvl);
		return;
	}
	snprintf(msg, sizeof(msg), "%s %.200s %d", a->method ? a->method : "-",
	    a->path ? a->path : "-", a->status);
	line_field(&l, "http.request.id", a->request_id);
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
	line_field(&l, "network.protocol", a->protocol);
	line_field(&l, "labels.istag", a->istag);
	line_field(&l, "client.ip", a->client_ip);
	line_end(&l, lvl);
}
