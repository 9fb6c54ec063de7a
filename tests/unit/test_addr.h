/* test_addr.h -- for unit tests (after cmocka.h): a socket address from an IPv4 or IPv6 text, with
 * a port, as libmicrohttpd hands a peer to us; SA(ss) views it as a struct sockaddr. */
#ifndef CLAMREST_TEST_ADDR_H
#define CLAMREST_TEST_ADDR_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static struct sockaddr_storage
addr(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(40000);
	} else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(40001);
	} else {
		fail_msg("not an address: %s", ip);
	}
	return ss;
}

#define SA(ss) ((const struct sockaddr *)(const void *)&(ss))

#endif
