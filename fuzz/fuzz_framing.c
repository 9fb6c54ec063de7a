/* fuzz_framing.c -- libFuzzer target: a raw request head, split into header lines, through the
 * framing checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct framing f = { 0 };
	char *buf = malloc(size + 1), *line, *save = NULL;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (line = strtok_r(buf, "\r\n", &save); line != NULL; line = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(line, ':');

		if (colon == NULL)
			continue;
		*colon++ = '\0';
		while (*colon == ' ' || *colon == '\t')
			colon++;
		framing_header(&f, line, colon);
	}
	if (framing_ok(&f) && f.content_length > 1)
		abort();	/* two lengths must never pass */
	if (framing_ok(&f) && f.content_length == 1 && f.transfer_encoding == 1)
		abort();
	free(buf);
	return 0;
}
