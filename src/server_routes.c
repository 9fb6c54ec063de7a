/* server_routes.c -- the GET routes: /check, /check_version, /check_warning, /version, /metrics
 * and the redirect of a path with merged slashes. */
#include "server_priv.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "body.h"
#include "config.h"
#include "dnsver.h"
#include "guard.h"
#include "metrics.h"
#include "pool.h"
#include "scanner.h"

/* The two versions /check_version and /check_warning compare; -1 with a reason when either is
 * missing. */
static int
versions(struct server *srv, long *local, long *remote, time_t *built, char *err, size_t errlen)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct scanner_stats st;

	if (sc == NULL) {
		snprintf(err, errlen, "the signature database is not loaded yet");
		return -1;
	}
	scanner_stats(sc, &st);
	if (st.db_version <= 0) {
		snprintf(err, errlen, "the loaded database has no daily version");
		return -1;
	}
	*local = st.db_version;
	*built = st.db_time;
	/* CLAMAV_TXT_URI="": no DNS comparison; the loaded version is the required one. */
	if (srv->dnsver == NULL) {
		*remote = *local;
		return 0;
	}
	return dnsver_get(srv->dnsver, remote, err, errlen);
}

/* 1 when DB_MAX_AGE is set and the database was built longer ago than that. */
static int
too_old(const struct server *srv, time_t built)
{
	unsigned max = srv->cfg->db_max_age;

	return max > 0 && (built <= 0 || difftime(time(NULL), built) > (double)max);
}

static enum MHD_Result
answer_version(struct server *srv, struct request *r)
{
	char out[512], err[256];
	long local, remote;
	time_t built;
	size_t len;
	int outdated;

	if (versions(srv, &local, &remote, &built, err, sizeof(err)) != 0) {
		len = api_json_version_error(out, sizeof(out), err);
		snprintf(r->why, sizeof(r->why), "%s", err);
		return reply_json(r, METRICS_ROUTE_VERSION, MHD_HTTP_INTERNAL_SERVER_ERROR, out, len,
		    MHD_RESPMEM_MUST_COPY);
	}
	outdated = labs(remote - local) > 1 || too_old(srv, built);
	if (outdated)
		snprintf(r->why, sizeof(r->why), "the database is outdated: local version %ld, "
		    "current %ld%s", local, remote, too_old(srv, built) ? ", past DB_MAX_AGE" : "");
	len = api_json_version(out, sizeof(out), local, remote, outdated);
	return reply_json(r, METRICS_ROUTE_VERSION,
	    outdated ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_OK, out, len, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result
answer_warning(struct server *srv, struct request *r)
{
	char out[256], err[256];
	long local, remote;
	time_t built;

	if (versions(srv, &local, &remote, &built, err, sizeof(err)) != 0) {
		snprintf(r->why, sizeof(r->why), "%s", err);
		return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	}
	if (too_old(srv, built)) {
		snprintf(out, sizeof(out), "Outdated local_version: %ld built %.0f s ago, past DB_MAX_AGE "
		    "%u s", local, difftime(time(NULL), built), srv->cfg->db_max_age);
		snprintf(r->why, sizeof(r->why), "%s", out);
		return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, out);
	}
	if (local != remote) {
		snprintf(out, sizeof(out), "Outdated local_version: %ld remote_version: %ld", local,
		    remote);
		snprintf(r->why, sizeof(r->why), "%s", out);
		return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, out);
	}
	snprintf(out, sizeof(out), "%ld", remote);
	return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_OK, out);
}

/* A scanner with an engine: not before the first load, nor during a low-memory reload. */
int
server_ready(struct server *srv)
{
	struct scanner *sc = atomic_load(&srv->scanner);

	return sc != NULL && scanner_ready(sc);
}

/* 1 while a RELOAD_MODE=low-memory reload has no engine (as opposed to DB_WAIT's first wait). */
int
server_reloading(struct server *srv)
{
	struct scanner *sc = atomic_load(&srv->scanner);

	return sc != NULL && scanner_reloading(sc);
}

/* GET /version: what this instance runs; the database fields are null before the first load. */
static enum MHD_Result
answer_about(struct server *srv, struct request *r)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct api_about a = { .engine = scanner_engine_version(), .db_version = -1,
	    .libclamav_patched = scanner_engine_patched() };
	struct scanner_stats st;
	char out[512];
	size_t len;

	if (sc != NULL) {
		scanner_stats(sc, &st);
		a.db_version = st.db_version;
		a.db_time = st.db_time;
		a.signatures = st.signatures;
	}
	len = api_json_about(out, sizeof(out), &a);
	return reply_json(r, METRICS_ROUTE_ABOUT, MHD_HTTP_OK, out, len, MHD_RESPMEM_MUST_COPY);
}

#define SERVER_METRICS_MAX METRICS_TEXT_MAX	/* bytes of the /metrics exposition */

static enum MHD_Result
answer_metrics(struct server *srv, struct request *r)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct metrics_gauges g = { .db_version = -1, .db_folder_ok = -1, .version = CONFIG_VERSION,
	    .libclamav = scanner_engine_version(), .libclamav_file = scanner_engine_file(),
	    .libclamav_patched = scanner_engine_patched() };
	struct scanner_stats st;
	char *buf;
	size_t len;

	g.connections = guard_count(srv->guard);
	g.scans_queued = pool_waiting(srv->pool);
	g.scans_running = pool_running(srv->pool);
	g.scan_rate = pool_rate(srv->pool);
	g.body_memory = body_memory_used();
	g.body_disk = body_disk_used();
	if (sc != NULL) {
		scanner_stats(sc, &st);
		g.db_version = st.db_version;
		g.db_time = st.db_time;
		g.signatures = st.signatures;
		g.reloads = st.reloads;
		g.reload_failures = st.reload_failures;
		g.cache_hits = st.cache_hits;
		g.member_hits = st.member_hits;
		g.member_misses = st.member_misses;
		g.member_entries = st.member_entries;
		g.cut_clean = st.cut_clean;
		g.db_folder_ok = st.db_folder_ok;
		g.db_folder_unusable = st.db_folder_unusable;
	}
	if ((buf = malloc(SERVER_METRICS_MAX)) == NULL)
		return MHD_NO;
	len = metrics_render(buf, SERVER_METRICS_MAX, &g);
	return reply_new(r, METRICS_ROUTE_METRICS, MHD_HTTP_OK,
	    "text/plain; version=0.0.4; charset=utf-8", buf, len, MHD_RESPMEM_MUST_FREE);
}

#define SERVER_HOST_MAX 255	/* bytes of a Host header echoed in a redirect */

/* 1 when a Host header may go into a Location as it is: a name or address and a port. */
static int
host_ok(const char *h)
{
	size_t n = h != NULL ? strlen(h) : 0;

	if (n == 0 || n > SERVER_HOST_MAX)
		return 0;
	return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") == n;
}

/* 308 to the path with its slashes merged, as Werkzeug's RequestRedirect: an absolute URL from the
 * scheme and Host (its default port left out), or the path alone when Host is missing or odd. The
 * query string is not carried over: libmicrohttpd's copy was cut (see quirks_uri), and no route
 * reads one. */
enum MHD_Result
answer_redirect(struct server *srv, struct request *r, const struct api_route_def *rt,
    const char *path)
{
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	const char *scheme = srv->tls_cert != NULL ? "https" : "http";
	const char *dflt = srv->tls_cert != NULL ? ":443" : ":80";
	char loc[SERVER_HOST_MAX + API_PATH_MAX + 16];
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t hl;

	if (host_ok(host)) {
		hl = strlen(host);
		if (hl > strlen(dflt) && strcmp(host + hl - strlen(dflt), dflt) == 0)
			hl -= strlen(dflt);
		snprintf(loc, sizeof(loc), "%s://%.*s%s", scheme, (int)hl, host, path);
	} else
		snprintf(loc, sizeof(loc), "%s", path);
	resp = MHD_create_response_from_buffer(strlen("Permanent Redirect"),
	    (void *)(uintptr_t)"Permanent Redirect", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
	ret = reply_send(r, route_metric(rt), MHD_HTTP_PERMANENT_REDIRECT, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Requests whose body means nothing (GET, HEAD, OPTIONS, and redirects of any method but POST):
 * answered on the second call, once any body was read and dropped, so libmicrohttpd keeps the
 * connection alive. The first call checked that the path resolves and the method is allowed. */
enum MHD_Result
handle_get(struct request *r, const char *url, const char *method)
{
	struct server *srv = r->srv;
	const struct api_route_def *rt;
	char merged[API_PATH_MAX];
	enum api_resolve how = api_resolve(url, &rt, merged, sizeof(merged));
	const struct canned *c = &srv->canned.not_found;

	if (how == API_NOT_FOUND)
		return reply_canned(r, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, c, "no such route");
	if (how == API_REDIRECT)
		return answer_redirect(srv, r, rt, merged);
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return reply_canned(r, route_metric(rt), MHD_HTTP_OK,
		    rt->post ? &srv->canned.options_post : &srv->canned.options_get, NULL);
	switch (rt->route) {
	case API_CHECK:
		if (!server_ready(srv))
			return reply_canned(r, route_metric(rt), MHD_HTTP_SERVICE_UNAVAILABLE,
			    &srv->canned.unavailable, server_reloading(srv) ?
			    "the signature database is reloading (RELOAD_MODE=low-memory)" :
			    "no signature database loaded yet (DB_WAIT)");
		if (atomic_load(&srv->draining))
			return reply_canned(r, route_metric(rt), MHD_HTTP_SERVICE_UNAVAILABLE,
			    &srv->canned.unavailable, "draining after SIGTERM");
		return reply_canned(r, route_metric(rt), MHD_HTTP_OK, &srv->canned.ok, NULL);
	case API_VERSION:
		return answer_version(srv, r);
	case API_WARNING:
		return answer_warning(srv, r);
	case API_METRICS:
		return answer_metrics(srv, r);
	case API_ABOUT:
		return answer_about(srv, r);
	default:
		return reply_canned(r, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, c, "no such route");
	}
}
