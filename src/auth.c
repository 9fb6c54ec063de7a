/* auth.c -- checks HTTP basic credentials against passlib pbkdf2-sha256 hashes, caching verdicts. */
#include "auth.h"
#include "util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_SCHEME		"$pbkdf2-sha256$"
#define AUTH_SALT_MAX		1024	/* bytes, passlib's max_salt_size */
#define AUTH_STR(x)		AUTH_STR2(x)	/* a constant's value as a string, for messages */
#define AUTH_STR2(x)		#x
#define AUTH_SALT_NEW		16	/* bytes, passlib's default salt_size */
#define AUTH_PLACEHOLDER	"CHANGE-ME"	/* the value deploy/kubernetes/secret.yaml ships */
#define AUTH_SUM_LEN		32	/* bytes, a SHA-256 output: checksums and cache keys */
#define AUTH_ROUNDS_DIGITS	16	/* bytes, room for the rounds field of a hash and its NUL */
#define AUTH_CACHE_SETS		256	/* a power of two; sets * ways = 1024 entries per cache */
#define AUTH_CACHE_WAYS		4	/* entries per set, the least recently used evicted */
#define AUTH_ERR_USER_MAX	64	/* bytes of a user name quoted in an error */

struct auth_user {
	char		*name;
	size_t		 namelen;
	unsigned	 rounds;
	unsigned char	*salt;
	size_t		 saltlen;
	unsigned char	 sum[AUTH_SUM_LEN];
};

struct auth_cache_entry {
	unsigned char	 key[AUTH_SUM_LEN];
	unsigned long	 used;		/* tick of the last use, 0 when empty */
};

/* Set-associative, so a few busy users sharing a set do not evict each other on every request.
 * The set comes from a keyed HMAC, so no client can aim at one. */
struct auth_cache {
	struct auth_cache_entry	 set[AUTH_CACHE_SETS][AUTH_CACHE_WAYS];
	unsigned long		 tick;
};

struct auth {
	struct auth_user	*users;
	size_t			 nusers;
	size_t			 cap;
	/* Unknown users are checked against this, so they cost what a real user costs. */
	struct auth_user	 decoy;
	unsigned char		 decoysalt[AUTH_SALT_NEW];
	EVP_MAC			*mac;
	EVP_MAC_CTX		*macbase;	/* keyed with SHA-256 once; copied per request */
	unsigned char		 mackey[AUTH_SUM_LEN];
	pthread_mutex_t		 lock;		/* guards good and bad */
	struct auth_cache	 good;
	struct auth_cache	 bad;
	atomic_ulong		 pbkdf2s;
};

static int
auth_b64_digit(unsigned char c, char c62)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (unsigned char)c62)
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes unpadded base64 whose 63rd digit is c62 ('+' standard, '.' passlib's ab64). Bits left
 * over at the end are ignored, as Python's decoder (and so passlib) does. */
static int
auth_b64_decode(const char *src, size_t n, char c62, unsigned char *dst, size_t dstlen,
    size_t *outlen)
{
	unsigned acc = 0;
	int bits = 0;
	size_t o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d = auth_b64_digit((unsigned char)src[i], c62);

		if (d < 0)
			return -1;
		acc = (acc << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == dstlen)
				return -1;
			dst[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*outlen = o;
	return 0;
}

/* How many bytes n unpadded base64 digits decode to; no overflow for any n. */
static size_t
auth_b64_len(size_t n)
{
	return n / 4 * 3 + n % 4 * 3 / 4;
}

/* Appends passlib's ab64 of src to out at *pos, NUL-terminated. */
static int
auth_ab64_encode(const unsigned char *src, size_t n, char *out, size_t outlen, size_t *pos)
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./";
	unsigned acc = 0;
	int bits = 0;
	size_t p = *pos;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | src[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			if (p + 1 >= outlen)
				return -1;
			out[p++] = digits[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0) {
		if (p + 1 >= outlen)
			return -1;
		out[p++] = digits[(acc << (6 - bits)) & 63];
	}
	out[p] = '\0';
	*pos = p;
	return 0;
}

static int
auth_pbkdf2(const char *pass, size_t plen, const unsigned char *salt, size_t saltlen,
    unsigned rounds, unsigned char *out)
{
	/* The casts are safe: every length and count is capped far below INT_MAX before we get here. */
	if (PKCS5_PBKDF2_HMAC(pass, (int)plen, salt, (int)saltlen, (int)rounds, EVP_sha256(),
	    AUTH_SUM_LEN, out) != 1)
		return -1;
	return 0;
}

/* Writes "APPLICATION_USERS entry N (user "x"): why". Names are quoted printable-only and short,
 * and not at all when they hold a '$', which suggests a hash pasted in the wrong place. */
static void
auth_err(char *err, size_t errlen, size_t entry, const char *user, size_t ulen, const char *why)
{
	char name[AUTH_ERR_USER_MAX + 1];
	size_t n = 0;

	if (err == NULL || errlen == 0)
		return;
	if (user == NULL || memchr(user, '$', ulen) != NULL) {
		snprintf(err, errlen, "APPLICATION_USERS entry %zu: %s", entry, why);
		return;
	}
	for (size_t i = 0; i < ulen && n < AUTH_ERR_USER_MAX; i++) {
		unsigned char c = (unsigned char)user[i];

		name[n++] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
	}
	name[n] = '\0';
	snprintf(err, errlen, "APPLICATION_USERS entry %zu (user \"%s%s\"): %s", entry, name,
	    ulen > n ? "..." : "", why);
}

/* Not isspace(): the locale must not change what a config means, and newlines split entries. */
static int
auth_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void
auth_trim(const char **s, const char **e)
{
	while (*s < *e && auth_is_space(**s))
		(*s)++;
	while (*e > *s && auth_is_space((*e)[-1]))
		(*e)--;
}

/* Returns the end of the entry at p: a newline, the two characters "\n", or the end of spec. */
static const char *
auth_entry_end(const char *p, const char **next)
{
	for (; *p != '\0'; p++) {
		if (*p == '\n') {
			*next = p + 1;
			return p;
		}
		if (p[0] == '\\' && p[1] == 'n') {
			*next = p + 2;
			return p;
		}
	}
	*next = p;
	return p;
}

static int
auth_parse_rounds(struct auth_user *u, const char *r, size_t n)
{
	char digits[AUTH_ROUNDS_DIGITS];
	long long rounds;

	/* passlib refuses zero-padded rounds; so do we, and "0" fails the range check. */
	if (n == 0 || n >= sizeof(digits) || r[0] == '0')
		return -1;
	memcpy(digits, r, n);
	digits[n] = '\0';
	if (util_parse_ll(digits, 1, AUTH_ROUNDS_MAX, &rounds) == -1)
		return -1;
	u->rounds = (unsigned)rounds;
	return 0;
}

/* Fills u's rounds, salt and checksum from "$pbkdf2-sha256$rounds$salt$checksum"; on failure
 * says why without quoting any of it. u->salt is the caller's to free either way. */
static int
auth_parse_hash(struct auth_user *u, const char *h, size_t len, const char **why)
{
	const char *end = h + len, *r, *salt, *sum;
	size_t n, saltn, sumn;

	*why = "hash is not in $pbkdf2-sha256$rounds$salt$checksum form";
	if (len < sizeof(AUTH_SCHEME) - 1 || memcmp(h, AUTH_SCHEME, sizeof(AUTH_SCHEME) - 1) != 0)
		return -1;
	r = h + sizeof(AUTH_SCHEME) - 1;
	salt = memchr(r, '$', (size_t)(end - r));
	if (salt == NULL)
		return -1;
	salt++;
	sum = memchr(salt, '$', (size_t)(end - salt));
	if (sum == NULL)
		return -1;
	sum++;
	if (memchr(sum, '$', (size_t)(end - sum)) != NULL)
		return -1;
	*why = "rounds is not a number in 1.." AUTH_STR(AUTH_ROUNDS_MAX);
	if (auth_parse_rounds(u, r, (size_t)(salt - 1 - r)) == -1)
		return -1;
	saltn = (size_t)(sum - 1 - salt);
	sumn = (size_t)(end - sum);
	*why = "salt is longer than " AUTH_STR(AUTH_SALT_MAX) " bytes";
	if (auth_b64_len(saltn) > AUTH_SALT_MAX)
		return -1;
	*why = "out of memory";
	u->salt = malloc(auth_b64_len(saltn) + 1);
	if (u->salt == NULL)
		return -1;
	*why = "salt is not adapted base64";
	if (auth_b64_decode(salt, saltn, '.', u->salt, auth_b64_len(saltn), &u->saltlen) == -1)
		return -1;
	*why = "checksum is not 32 bytes of adapted base64";
	if (auth_b64_len(sumn) != AUTH_SUM_LEN ||
	    auth_b64_decode(sum, sumn, '.', u->sum, AUTH_SUM_LEN, &n) == -1)
		return -1;
	return 0;
}

static const char *
auth_check_name(const struct auth *a, const char *user, size_t ulen)
{
	if (ulen == 0)
		return "empty user name";
	if (memchr(user, ':', ulen) != NULL)
		return "user name contains ':', which basic auth cannot send";
	for (size_t i = 0; i < a->nusers; i++)
		if (a->users[i].namelen == ulen && memcmp(a->users[i].name, user, ulen) == 0)
			return "user is listed twice";
	return NULL;
}

static int
auth_grow(struct auth *a)
{
	struct auth_user *users;
	size_t cap = a->cap == 0 ? 8 : a->cap * 2;

	if (a->nusers < a->cap)
		return 0;
	users = reallocarray(a->users, cap, sizeof(*users));
	if (users == NULL)
		return -1;
	a->users = users;
	a->cap = cap;
	return 0;
}

/* Adds the trimmed entry s[0..len) ("user::hash"), entry number entry, to a. */
static int
auth_add_entry(struct auth *a, const char *s, size_t len, size_t entry, char *err, size_t errlen)
{
	struct auth_user u = { 0 };
	const char *sep, *us, *ue, *hs, *he, *why;

	sep = memmem(s, len, "::", 2);
	if (sep == NULL) {
		auth_err(err, errlen, entry, NULL, 0, "expected user::hash (two colons)");
		return -1;
	}
	us = s;
	ue = sep;
	hs = sep + 2;
	he = s + len;
	auth_trim(&us, &ue);
	auth_trim(&hs, &he);
	why = auth_check_name(a, us, (size_t)(ue - us));
	if (why != NULL)
		goto fail;
	if (auth_parse_hash(&u, hs, (size_t)(he - hs), &why) == -1)
		goto fail;
	why = "out of memory";
	u.namelen = (size_t)(ue - us);
	u.name = strndup(us, u.namelen);
	if (u.name == NULL || auth_grow(a) == -1)
		goto fail;
	a->users[a->nusers++] = u;
	return 0;
fail:
	free(u.name);
	free(u.salt);
	auth_err(err, errlen, entry, us, (size_t)(ue - us), why);
	return -1;
}

/* An HMAC context keyed once: EVP_MAC_init with a digest name fetches SHA-256 from OpenSSL's provider
 * store (a lookup under a lock) on every call, about 6% of a small scan's CPU; a copy of a keyed
 * context (EVP_MAC_CTX_dup, which keeps the state) needs neither the fetch nor the key schedule. */
static int
auth_mac_base(struct auth *a)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[2];

	if ((a->macbase = EVP_MAC_CTX_new(a->mac)) == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	return EVP_MAC_init(a->macbase, a->mackey, sizeof(a->mackey), params) == 1 ? 0 : -1;
}

static struct auth *
auth_alloc(void)
{
	struct auth *a;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		return NULL;
	}
	atomic_init(&a->pbkdf2s, 0);
	a->decoy.salt = a->decoysalt;
	a->decoy.saltlen = sizeof(a->decoysalt);
	a->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (a->mac == NULL || RAND_bytes(a->mackey, sizeof(a->mackey)) != 1 ||
	    RAND_bytes(a->decoysalt, sizeof(a->decoysalt)) != 1 ||
	    RAND_bytes(a->decoy.sum, sizeof(a->decoy.sum)) != 1 || auth_mac_base(a) != 0) {
		auth_free(a);
		return NULL;
	}
	return a;
}

/* The shipped Kubernetes Secret holds AUTH_PLACEHOLDER, not a demo user: applied as it is, the
 * service refuses to start and says what to put there. */
static int
auth_is_placeholder(const char *s, size_t len, char *err, size_t errlen)
{
	size_t n = sizeof(AUTH_PLACEHOLDER) - 1;

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(s + i, AUTH_PLACEHOLDER, n) == 0) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "APPLICATION_USERS: still the placeholder "
				    AUTH_PLACEHOLDER "; replace it with user::hash lines (make a hash "
				    "with: clamrest hash-password)");
			return 1;
		}
	}
	return 0;
}

struct auth *
auth_new(const char *spec, char *err, size_t errlen)
{
	struct auth *a;
	const char *p, *next, *s, *e;
	size_t entry = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	a = auth_alloc();
	if (a == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "APPLICATION_USERS: cannot set up (out of memory or OpenSSL)");
		return NULL;
	}
	for (p = spec != NULL ? spec : ""; *p != '\0'; p = next) {
		s = p;
		e = auth_entry_end(p, &next);
		auth_trim(&s, &e);
		if (s == e)
			continue;
		if (auth_is_placeholder(s, (size_t)(e - s), err, errlen))
			goto fail;
		if (auth_add_entry(a, s, (size_t)(e - s), ++entry, err, errlen) == -1)
			goto fail;
	}
	/* The dearest real user, so an unknown name is never the cheaper answer. */
	for (size_t i = 0; i < a->nusers; i++)
		if (a->users[i].rounds > a->decoy.rounds)
			a->decoy.rounds = a->users[i].rounds;
	return a;
fail:
	auth_free(a);
	return NULL;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->nusers; i++) {
		free(a->users[i].name);
		free(a->users[i].salt);
	}
	free(a->users);
	EVP_MAC_CTX_free(a->macbase);
	EVP_MAC_free(a->mac);
	pthread_mutex_destroy(&a->lock);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

size_t
auth_user_count(const struct auth *a)
{
	return a == NULL ? 0 : a->nusers;
}

unsigned long
auth_pbkdf2_count(const struct auth *a)
{
	return a == NULL ? 0 : atomic_load(&a->pbkdf2s);
}

/* HMAC-SHA256(per-process key, user || 0x00 || pass): names the credentials in the cache without
 * keeping the password, and unpredictably, so nobody can aim at a cache slot. */
static int
auth_cache_key(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen,
    unsigned char *key)
{
	static const unsigned char zero = 0;
	EVP_MAC_CTX *ctx;
	size_t n;
	int rc = -1;

	ctx = EVP_MAC_CTX_dup(a->macbase);
	if (ctx == NULL)
		return -1;
	if (EVP_MAC_update(ctx, (const unsigned char *)user, ulen) != 1 ||
	    EVP_MAC_update(ctx, &zero, 1) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)pass, plen) != 1 ||
	    EVP_MAC_final(ctx, key, &n, AUTH_SUM_LEN) != 1 || n != AUTH_SUM_LEN)
		goto fail;
	rc = 0;
fail:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

static struct auth_cache_entry *
auth_cache_set(struct auth_cache *c, const unsigned char *key)
{
	return c->set[((size_t)key[0] << 8 | key[1]) & (AUTH_CACHE_SETS - 1)];
}

static int
auth_cache_find(struct auth_cache *c, const unsigned char *key)
{
	struct auth_cache_entry *set = auth_cache_set(c, key);

	for (size_t i = 0; i < AUTH_CACHE_WAYS; i++) {
		if (set[i].used != 0 && util_ct_equal(set[i].key, key, AUTH_SUM_LEN)) {
			set[i].used = ++c->tick;
			return 1;
		}
	}
	return 0;
}

/* Adds key, evicting the least recently used entry of its set; another thread may have added
 * the same key while we ran PBKDF2, so that is looked for first. */
static void
auth_cache_put(struct auth_cache *c, const unsigned char *key)
{
	struct auth_cache_entry *set = auth_cache_set(c, key), *victim = &set[0];

	if (auth_cache_find(c, key))
		return;
	for (size_t i = 1; i < AUTH_CACHE_WAYS; i++)
		if (set[i].used < victim->used)
			victim = &set[i];
	memcpy(victim->key, key, AUTH_SUM_LEN);
	victim->used = ++c->tick;
}

/* 1 when the password is right, 0 when not, -1 when OpenSSL failed. */
static int
auth_pbkdf2_verify(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen)
{
	const struct auth_user *u = &a->decoy;
	unsigned char out[AUTH_SUM_LEN];
	int found = 0;

	if (a->nusers == 0)	/* no name exists, so there is nothing to hide */
		return 0;
	/* Every name is compared, in constant time, so the scan does not tell which one matched. */
	for (size_t i = 0; i < a->nusers; i++) {
		int same = a->users[i].namelen == ulen && util_ct_equal(a->users[i].name, user, ulen);

		if (same) {
			u = &a->users[i];
			found = 1;
		}
	}
	if (auth_pbkdf2(pass, plen, u->salt, u->saltlen, u->rounds, out) == -1)
		return -1;
	atomic_fetch_add(&a->pbkdf2s, 1);
	return found & util_ct_equal(out, u->sum, AUTH_SUM_LEN);
}

/* -1 on a miss, else the cached verdict. */
static int
auth_cache_lookup(struct auth *a, const unsigned char *key)
{
	int verdict = -1;

	pthread_mutex_lock(&a->lock);
	if (auth_cache_find(&a->good, key))
		verdict = 1;
	else if (auth_cache_find(&a->bad, key))
		verdict = 0;
	pthread_mutex_unlock(&a->lock);
	return verdict;
}

/* The cache key of user/pass; -1 when they can never match (no lookup or PBKDF2 needed) or
 * OpenSSL failed. */
static int
auth_key(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen,
    unsigned char *key)
{
	if (a == NULL || (user == NULL && ulen > 0) || (pass == NULL && plen > 0) ||
	    plen > AUTH_PASSWORD_MAX)
		return -1;
	/* No configured name holds a NUL, and refusing them keeps user || 0x00 || pass unambiguous. */
	if (ulen > 0 && memchr(user, '\0', ulen) != NULL)
		return -1;
	return auth_cache_key(a, user != NULL ? user : "", ulen, pass != NULL ? pass : "", plen, key);
}

int
auth_lookup(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen)
{
	unsigned char key[AUTH_SUM_LEN];

	if (a == NULL || a->nusers == 0)	/* no name exists: nothing to check */
		return 0;
	if (auth_key(a, user, ulen, pass, plen, key) == -1)
		return 0;
	return auth_cache_lookup(a, key);
}

int
auth_verify(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen)
{
	unsigned char key[AUTH_SUM_LEN];
	int verdict;

	if (auth_key(a, user, ulen, pass, plen, key) == -1)
		return 0;
	/* Checks of the same credentials queued together (a client's connections after a restart)
	 * cost one PBKDF2: the first caches the verdict the others find here. */
	verdict = auth_cache_lookup(a, key);
	if (verdict != -1)
		return verdict;
	/* PBKDF2 runs unlocked: two threads may both verify the same new credentials, which is
	 * harmless, while one slow check must never stall every other request. */
	verdict = auth_pbkdf2_verify(a, user != NULL ? user : "", ulen, pass != NULL ? pass : "",
	    plen);
	if (verdict == -1)
		return -1;	/* an OpenSSL failure is no verdict to remember */
	pthread_mutex_lock(&a->lock);
	auth_cache_put(verdict ? &a->good : &a->bad, key);
	pthread_mutex_unlock(&a->lock);
	return verdict;
}

int
auth_check(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen)
{
	int verdict = auth_lookup(a, user, ulen, pass, plen);

	if (verdict == -1)
		verdict = auth_verify(a, user, ulen, pass, plen);
	return verdict == 1;
}

/* ASCII-only, so a locale cannot change what "Basic" matches. */
static int
auth_is_basic(const char *h)
{
	static const char want[] = "basic";

	for (size_t i = 0; i < sizeof(want) - 1; i++) {
		char c = h[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != want[i])
			return 0;
	}
	return h[sizeof(want) - 1] == ' ';
}

int
auth_parse_basic(const char *header, char *buf, size_t buflen,
    const char **user, size_t *ulen, const char **pass, size_t *plen)
{
	const char *p, *end;
	char *colon;
	size_t n, len;

	if (header == NULL || buf == NULL || buflen == 0 || !auth_is_basic(header))
		return -1;
	for (p = header + sizeof("Basic") - 1; *p == ' '; p++)
		;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - p);
	if (n > 0 && n % 4 == 0 && p[n - 1] == '=') {
		n--;
		if (p[n - 1] == '=')
			n--;
	}
	/* One byte is kept back for the NUL that ends the password. */
	if (auth_b64_decode(p, n, '+', (unsigned char *)buf, buflen - 1, &len) == -1)
		return -1;
	colon = memchr(buf, ':', len);
	if (colon == NULL)
		return -1;
	*colon = '\0';
	buf[len] = '\0';
	*user = buf;
	*ulen = (size_t)(colon - buf);
	*pass = colon + 1;
	*plen = len - *ulen - 1;
	return 0;
}

int
auth_hash_password(const char *pass, size_t plen, unsigned rounds, char *out, size_t outlen)
{
	unsigned char salt[AUTH_SALT_NEW], sum[AUTH_SUM_LEN];
	size_t pos;
	int n;

	if ((pass == NULL && plen > 0) || plen > AUTH_PASSWORD_MAX || rounds < 1 ||
	    rounds > AUTH_ROUNDS_MAX || out == NULL || outlen == 0)
		return -1;
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    auth_pbkdf2(pass != NULL ? pass : "", plen, salt, sizeof(salt), rounds, sum) == -1)
		return -1;
	n = snprintf(out, outlen, AUTH_SCHEME "%u$", rounds);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	pos = (size_t)n;
	if (auth_ab64_encode(salt, sizeof(salt), out, outlen, &pos) == -1 || pos + 1 >= outlen)
		return -1;
	out[pos++] = '$';
	if (auth_ab64_encode(sum, sizeof(sum), out, outlen, &pos) == -1)
		return -1;
	return 0;
}
