/* proxy.c -- TRUSTED_PROXIES and the right-most untrusted hop of X-Forwarded-For. */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define PROXY_ENTRY_MAX	64	/* bytes of one list entry or header element: an IPv6 address and /128 */

/* One CIDR block, IPv4 blocks held as IPv4-mapped IPv6 ones (prefix + 96). */
struct proxy_net {
	unsigned char addr[16];
	unsigned bits;
};

struct proxy_list {
	unsigned n;
	struct proxy_net net[PROXY_MAX_NETS];
};

static const unsigned char proxy_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* An address literal as 16 bytes (IPv4 mapped); -1 when s is not one. */
static int
proxy_parse_ip(const char *s, unsigned char out[16], int *v4)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(out, proxy_mapped, sizeof(proxy_mapped));
		memcpy(out + 12, &a4, 4);
		*v4 = 1;
		return 0;
	}
	*v4 = 0;
	return inet_pton(AF_INET6, s, out) == 1 ? 0 : -1;
}

/* Copies the element s[0..len) without its surrounding spaces and tabs; -1 when empty or too long. */
static int
proxy_trim(const char *s, size_t len, char *out, size_t outlen)
{
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= outlen)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int
proxy_parse_net(const char *s, struct proxy_net *net)
{
	char buf[PROXY_ENTRY_MAX];
	char *slash;
	long long bits;
	int v4;

	snprintf(buf, sizeof(buf), "%s", s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	if (proxy_parse_ip(buf, net->addr, &v4) != 0)
		return -1;
	if (slash == NULL)
		bits = v4 ? 32 : 128;
	else if (util_parse_ll(slash + 1, 0, v4 ? 32 : 128, &bits) != 0)
		return -1;
	net->bits = (unsigned)bits + (v4 ? 96 : 0);
	return 0;
}

/* 1 when the first bits of a and b agree. */
static int
proxy_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

struct proxy_list *
proxy_list_new(const char *spec, char *err, size_t errlen)
{
	struct proxy_list *p = calloc(1, sizeof(*p));
	char entry[PROXY_ENTRY_MAX];
	const char *s = spec, *comma;
	size_t len;

	if (p == NULL) {
		snprintf(err, errlen, "TRUSTED_PROXIES: out of memory");
		return NULL;
	}
	if (strspn(spec, " \t") == strlen(spec))
		return p;
	for (;;) {
		comma = strchr(s, ',');
		len = comma != NULL ? (size_t)(comma - s) : strlen(s);
		if (p->n == PROXY_MAX_NETS) {
			snprintf(err, errlen, "TRUSTED_PROXIES: more than %d entries", PROXY_MAX_NETS);
			goto fail;
		}
		if (proxy_trim(s, len, entry, sizeof(entry)) != 0 ||
		    proxy_parse_net(entry, &p->net[p->n]) != 0) {
			snprintf(err, errlen, "TRUSTED_PROXIES: '%.*s' is not an IPv4 or IPv6 address or "
			    "CIDR block (10.0.0.0/8, fd00::/8, 127.0.0.1)", (int)(len < 60 ? len : 60), s);
			goto fail;
		}
		p->n++;
		if (comma == NULL)
			return p;
		s = comma + 1;
	}
fail:
	free(p);
	return NULL;
}

void
proxy_list_free(struct proxy_list *p)
{
	free(p);
}

unsigned
proxy_list_count(const struct proxy_list *p)
{
	return p != NULL ? p->n : 0;
}

/* sa as 16 bytes (IPv4 mapped); -1 when it is neither family. */
static int
proxy_sa_bytes(const struct sockaddr *sa, unsigned char out[16])
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(out, proxy_mapped, sizeof(proxy_mapped));
		memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

static int
proxy_bytes_trusted(const struct proxy_list *p, const unsigned char *a)
{
	for (unsigned i = 0; p != NULL && i < p->n; i++)
		if (proxy_prefix_eq(a, p->net[i].addr, p->net[i].bits))
			return 1;
	return 0;
}

int
proxy_trusted(const struct proxy_list *p, const struct sockaddr *sa)
{
	unsigned char a[16];

	return proxy_sa_bytes(sa, a) == 0 && proxy_bytes_trusted(p, a);
}

/* Writes the 16 bytes a to out as the address family they are (IPv4 when mapped). */
static void
proxy_bytes_sa(const unsigned char *a, struct sockaddr_storage *out)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;

	memset(out, 0, sizeof(*out));
	if (memcmp(a, proxy_mapped, sizeof(proxy_mapped)) == 0) {
		in4->sin_family = AF_INET;
		memcpy(&in4->sin_addr, a + 12, 4);
	} else {
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, a, 16);
	}
}

static void
proxy_copy_peer(const struct sockaddr *peer, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (peer != NULL && peer->sa_family == AF_INET)
		memcpy(out, peer, sizeof(struct sockaddr_in));
	else if (peer != NULL && peer->sa_family == AF_INET6)
		memcpy(out, peer, sizeof(struct sockaddr_in6));
}

/* Walks one header line from its right end: 1 with out set at the first untrusted element, 0 when
 * every element is trusted (out: the left-most), -1 when an element walked is not an address.
 * Elements left of the first untrusted one are never read: a client may put anything there. */
static int
proxy_walk_line(const struct proxy_list *p, const char *xff, unsigned char out[16])
{
	char entry[PROXY_ENTRY_MAX];
	size_t end = strlen(xff), start;
	int v4;

	for (;;) {
		start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		if (proxy_trim(xff + start, end - start, entry, sizeof(entry)) != 0 ||
		    proxy_parse_ip(entry, out, &v4) != 0)
			return -1;
		if (!proxy_bytes_trusted(p, out))
			return 1;
		if (start == 0)
			return 0;
		end = start - 1;
	}
}

int
proxy_client(const struct proxy_list *p, const struct sockaddr *peer, const char *const *xff,
    size_t nxff, struct sockaddr_storage *out)
{
	unsigned char a[16];
	int rc = 0;

	proxy_copy_peer(peer, out);
	if (nxff == 0 || proxy_list_count(p) == 0 || !proxy_trusted(p, peer))
		return 0;
	/* Header lines count as one list joined with commas, in their order. */
	for (size_t i = nxff; i-- > 0 && rc == 0;)
		if ((rc = proxy_walk_line(p, xff[i], a)) < 0)
			return 0;
	proxy_bytes_sa(a, out);
	return 1;
}
