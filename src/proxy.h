/* proxy.h -- TRUSTED_PROXIES: the CIDR list of proxies whose X-Forwarded-For is believed, and the
 * client address a request comes from: the peer's, or behind trusted proxies the right-most
 * address of X-Forwarded-For that is not one of them. Without the list the header is ignored, so
 * a client cannot choose the address it is logged and throttled under.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_PROXY_H
#define CLAMREST_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_MAX_NETS	64	/* CIDR entries in TRUSTED_PROXIES */
#define PROXY_XFF_LINES	16	/* X-Forwarded-For header lines read, the last ones */

struct proxy_list;

/* Parses a comma-separated list of CIDR blocks or single addresses, IPv4 or IPv6 ("10.0.0.0/8,
 * ::1, fd00::/8"); "" gives an empty list (nothing trusted). NULL with one line naming
 * TRUSTED_PROXIES in err on a malformed entry. Caller owns the result. */
struct proxy_list *proxy_list_new(const char *spec, char *err, size_t errlen);
void proxy_list_free(struct proxy_list *p);
/* Entries in the list. */
unsigned proxy_list_count(const struct proxy_list *p);
/* 1 when sa (IPv4, IPv6, or IPv4-mapped IPv6 matched as IPv4) is in the list. */
int proxy_trusted(const struct proxy_list *p, const struct sockaddr *sa);

/* The client address of a request from peer with the nxff X-Forwarded-For header lines xff (in
 * their order; taken as one list joined by commas): peer, unless peer is trusted and the list
 * walked from its right end is well formed (each element an IP address, no empty one); then the
 * right-most element that is not trusted, or the left-most when all are. Elements left of that one
 * are never read (a client may write anything there). Written to out (port 0); returns 1 when it
 * came from the header, else 0. */
int proxy_client(const struct proxy_list *p, const struct sockaddr *peer, const char *const *xff,
    size_t nxff, struct sockaddr_storage *out);

#endif
