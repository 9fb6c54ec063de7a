/* auth.h -- HTTP basic auth against APPLICATION_USERS (passlib pbkdf2-sha256 hashes), with a cache of
 * verified credentials so a request costs a hash lookup, not a PBKDF2.
 * Functions returning int return 0 on success and -1 on failure unless said otherwise. */
#ifndef CLAMREST_AUTH_H
#define CLAMREST_AUTH_H

#include <stddef.h>

#define AUTH_ROUNDS_DEFAULT	29000		/* passlib's pbkdf2_sha256 default */
#define AUTH_ROUNDS_MAX		10000000	/* above this one check would take seconds */
#define AUTH_HASH_MAX		128		/* bytes, enough for any hash auth_hash_password writes */
#define AUTH_PASSWORD_MAX	4096		/* bytes, passlib's MAX_PASSWORD_SIZE */

struct auth;

/* Parses APPLICATION_USERS: "user::hash" entries separated by newlines or the two characters "\n";
 * blank entries are skipped. On a malformed entry returns NULL and writes a one-line reason to err.
 * An empty spec gives an auth with no users (every check fails). Caller owns the result.
 * Whitespace and \r around an entry, its user and its hash are ignored. Entries are numbered from 1
 * counting non-blank ones only. A user listed twice is rejected (ambiguous config), as is a user
 * name containing ':' (basic auth could never send it). A NULL spec is taken as empty. */
struct auth *auth_new(const char *spec, char *err, size_t errlen);
void auth_free(struct auth *a);
size_t auth_user_count(const struct auth *a);

/* The split of auth_check for callers that must not run PBKDF2 (15-30 ms at passlib's rounds) on
 * a thread that serves other clients. All three are thread-safe. */

/* The cached verdict, in microseconds: 1 right, 0 wrong (also credentials that can never match: a
 * NUL in the user name, a password longer than AUTH_PASSWORD_MAX, no users at all), -1 not known
 * yet: only auth_verify can tell. */
int auth_lookup(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen);
/* Runs PBKDF2 and caches the verdict: 1 right, 0 wrong, -1 when OpenSSL failed (nothing cached).
 * Credentials cached meanwhile (by a check that ran first) are answered from the cache. */
int auth_verify(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen);
/* 1 when user/pass match a configured user, else 0: auth_lookup, then auth_verify on a miss.
 * Repeated calls with the same credentials, right or wrong, never run PBKDF2 again. */
int auth_check(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen);

/* Splits an Authorization header value "Basic <base64>" into user and password, decoded into buf
 * (pointers point into buf). -1 when it is not well-formed basic auth or does not fit buf.
 * The decoded "user:password" plus one byte must fit: both results are NUL-terminated in buf. */
int auth_parse_basic(const char *header, char *buf, size_t buflen,
    const char **user, size_t *ulen, const char **pass, size_t *plen);

/* Writes a passlib pbkdf2_sha256 hash of pass ("$pbkdf2-sha256$rounds$salt$checksum") to out.
 * Uses a random 16-byte salt; rounds must be in 1..AUTH_ROUNDS_MAX, outlen >= AUTH_HASH_MAX is enough. */
int auth_hash_password(const char *pass, size_t plen, unsigned rounds, char *out, size_t outlen);

/* For tests: how many PBKDF2 computations auth_verify has run, to show the cache at work. */
unsigned long auth_pbkdf2_count(const struct auth *a);

#endif
