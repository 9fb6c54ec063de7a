/* fuzz_auth_basic.c -- libFuzzer target for Authorization header parsing into buffers of several sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever the input, a success must describe "user\0pass\0" laid out inside buf. */
static void
fuzz_parse(const char *header, size_t buflen)
{
	const char *user, *pass;
	size_t ulen, plen;
	/* Exactly buflen bytes (at least one to allocate), so ASan sees any write past the end. */
	char *buf = malloc(buflen > 0 ? buflen : 1);

	if (buf == NULL)
		return;
	if (auth_parse_basic(header, buf, buflen, &user, &ulen, &pass, &plen) == 0) {
		if (user != buf || pass != user + ulen + 1 || ulen + plen + 2 > buflen ||
		    user[ulen] != '\0' || pass[plen] != '\0' || memchr(user, ':', ulen) != NULL)
			abort();
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 0, 1, 3, 4, 16, 64, 4096 };
	char *header;

	header = malloc(size + 1);
	if (header == NULL)
		return 0;
	memcpy(header, data, size);
	header[size] = '\0';
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		fuzz_parse(header, sizes[i]);
	fuzz_parse(header, size + 1);
	free(header);
	return 0;
}
