/* log.h -- structured logging: one JSON object per line, info to stdout, warnings and errors to stderr.
 * Names follow the Elastic Common Schema as upstream dit-clamav-rest does. */
#ifndef CLAMREST_LOG_H
#define CLAMREST_LOG_H

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR, LOG_LVL_CRITICAL };

/* Sets the threshold from a name Python's logging knows (NOTSET, DEBUG, INFO, WARN, WARNING, ERROR,
 * FATAL, CRITICAL; any case) or a numeric level 0 to 1000 as Python's (DEBUG is 10, CRITICAL 50);
 * -1 if neither. A message of ours shows when its level (10 to 40) is at least the threshold. */
int log_set_level(const char *name);
int log_enabled(enum log_level lvl);
/* LOG_FORMAT: "json" (the default: one ECS object per line) or "text" (one line a person reads:
 * time, level, message, key=value fields); -1 if neither. */
int log_set_format(const char *name);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn and log_error append strerror(errno) when errno was set; the x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A start-up or fatal error, at CRITICAL on stderr whatever the threshold: the process is about to
 * exit and this line says why. */
void log_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An INFO line msg with an object of fields: members are JSON object members ("k":v,...) without
 * the braces, logged as key's object in JSON, as k=v after msg in text. */
void log_info_object(const char *msg, const char *key, const char *members);

/* The id of the request this thread works for (NULL: none): every line the thread writes carries
 * it as http.request.id until it is set again. id is borrowed: it must outlive the setting. */
void log_set_request(const char *id);

/* One access-log line per request, at the level log_access_level gives. Any string may be NULL
 * (the field is then left out). */
struct log_access {
	const char *method;
	const char *path;
	int status;		/* 499: the connection ended before the answer went */
	int post;		/* a POST: INFO when it succeeds (else DEBUG), body bytes logged */
	double duration;	/* seconds */
	const char *user;
	const char *source_ip;
	const char *request_id;
	const char *user_agent;
	long long body_bytes;	/* logged for a POST */
	const char *file_name;	/* multipart filename */
	const char *sha256;	/* hex digest of the scanned bytes */
	const char *verdict;	/* "clean", "malware", "error", or NULL when no scan */
	const char *signature;	/* when malware */
	const char *error;	/* why the request failed or was refused */
	const char *protocol;	/* "icap" for an ICAP request (network.protocol); NULL: HTTP's line */
	const char *istag;	/* ICAP: the ISTag answered */
	const char *client_ip;	/* ICAP: X-Client-IP, the proxy's client (client.ip) */
};
/* DEBUG for a GET, HEAD or OPTIONS answered below 400, INFO for a POST answered below 400, WARNING
 * for 4xx (and 499), ERROR for 5xx. */
enum log_level log_access_level(int status, int post);
void log_access(const struct log_access *a);

#endif
