/* dnsver.h -- the ClamAV database version the world requires: field 2 (from 0) of the TXT record
 * of CLAMAV_TXT_URI (e.g. "0.103.1:59:26120:1616707740:0:63:49191:333" -> 26120, the daily version),
 * looked up with c-ares by a background thread and cached for the record's TTL (at least DNSVER_MIN_TTL seconds), so a reader
 * never waits on the network except, bounded, for the very first lookup.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_DNSVER_H
#define CLAMREST_DNSVER_H

#include <stddef.h>

#define DNSVER_MIN_TTL   60	/* seconds */
#define DNSVER_RETRY     10	/* seconds between attempts after a failure */
#define DNSVER_MAX_TTL   86400	/* seconds; a longer TTL would pin a value for days */
#define DNSVER_FIRST_WAIT 3	/* seconds dnsver_get waits for the very first lookup */
#define DNSVER_QUERY_TIMEOUT_MS 2000	/* milliseconds for a try, c-ares doubles it per retry */
#define DNSVER_QUERY_TRIES 2
#define DNSVER_LOOKUP_DEADLINE 5	/* seconds; a whole lookup is cancelled after this */
#define DNSVER_POLL_SLICE_MS 100	/* milliseconds; how soon the thread sees a stop request */

struct dnsver;

/* server: NULL for the system resolver, or "ip" / "ip:port" (IPv4 or [IPv6]:port). Starts the
 * background thread. NULL with a reason in err on a bad server string. Caller owns the result. */
struct dnsver *dnsver_new(const char *name, const char *server, char *err, size_t errlen);
void dnsver_free(struct dnsver *d);

/* The cached required version; -1 with the reason in err while none could be had. */
int dnsver_get(struct dnsver *d, long *version, char *err, size_t errlen);

/* Seconds the cached value is kept before the next lookup (its TTL clamped to [DNSVER_MIN_TTL,
 * DNSVER_MAX_TTL]); -1 while no value is known. For tests and metrics. */
int dnsver_cache_ttl(struct dnsver *d, unsigned *secs);

/* Note: "field 2" counts from 0: the daily version, 26120 in the example above, not 59 (main);
 * see dnsver_parse_txt in dnsver.c. */
/* Parses the TXT text: field 2 (colon separated) as a version number. Exposed for tests and fuzzing. */
int dnsver_parse_txt(const char *txt, size_t len, long *version);
/* Extracts the first TXT record of a raw DNS answer (strings concatenated, NUL-terminated in txt)
 * and its TTL. Exposed for tests and fuzzing. */
int dnsver_parse_answer(const unsigned char *abuf, size_t alen, char *txt, size_t txtlen, unsigned *ttl);

#endif
