/* log.h -- structured logging: one JSON object per line, info to stdout, warnings and errors to stderr.
 * Names follow the Elastic Common Schema as upstream dit-clamav-rest does. */
#ifndef CLAMREST_LOG_H
#define CLAMREST_LOG_H

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR };

/* Sets the threshold from a name Python's logging knows (NOTSET, DEBUG, INFO, WARN, WARNING, ERROR,
 * FATAL, CRITICAL; any case) or a numeric level 0 to 1000 as Python's (DEBUG is 10, CRITICAL 50);
 * -1 if neither. A message of ours shows when its level (10 to 40) is at least the threshold. */
int log_set_level(const char *name);
int log_enabled(enum log_level lvl);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn and log_error append strerror(errno) when errno was set; the x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One access-log line per answered request. Any string may be NULL. */
struct log_access {
	const char *method;
	const char *path;
	int status;
	double duration;	/* seconds */
	const char *user;
	const char *source_ip;
	const char *trace_id;
	const char *verdict;	/* signature name, "clean", or NULL when no scan */
};
void log_access(const struct log_access *a);

#endif
