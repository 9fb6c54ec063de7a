/* fuzz_proxy.c -- libFuzzer target: a TRUSTED_PROXIES list and X-Forwarded-For lines (the input
 * split at NUL bytes: list first, then header lines) through the parser and the walk, and the
 * request-id headers through reqid_pick. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "reqid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), err[256], id[REQID_SIZE];
	const char *part[PROXY_XFF_LINES + 1];
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct sockaddr_storage out;
	struct proxy_list *p;
	size_t n = 0, i = 0;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	while (n < PROXY_XFF_LINES + 1) {
		part[n++] = buf + i;
		i += strlen(buf + i) + 1;
		if (i > size)
			break;
	}
	if (reqid_pick(part[0], n > 1 ? part[1] : NULL, n > 2 ? part[2] : NULL, id) == REQID_HEADER &&
	    !reqid_valid(id))
		abort();
	if (strlen(id) > REQID_MAX)
		abort();
	inet_pton(AF_INET, "10.0.0.1", &peer.sin_addr);
	p = proxy_list_new(part[0], err, sizeof(err));
	if (p == NULL)
		p = proxy_list_new("10.0.0.0/8,::/0", err, sizeof(err));
	if (p != NULL) {
		proxy_client(p, (const struct sockaddr *)&peer, part + 1, n - 1, &out);
		if (out.ss_family != AF_INET && out.ss_family != AF_INET6)
			abort();
	}
	proxy_list_free(p);
	free(buf);
	return 0;
}
