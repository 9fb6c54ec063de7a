/* fuzz_dnsver.c -- libFuzzer target for the DNS answer and TXT parsers, which read bytes off the network. */
#include <stdint.h>
#include <string.h>

#include "dnsver.h"

#define FUZZ_TXT_MAX	1024	/* bytes, as dnsver.c itself uses */
#define FUZZ_TXT_SMALL	8	/* bytes; makes most records overflow the buffer */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char txt[FUZZ_TXT_MAX], small[FUZZ_TXT_SMALL];
	unsigned ttl;
	long v;

	if (dnsver_parse_answer(data, size, txt, sizeof(txt), &ttl) == 0)
		(void)dnsver_parse_txt(txt, strlen(txt), &v);
	(void)dnsver_parse_answer(data, size, small, sizeof(small), &ttl);
	/* The raw bytes as TXT text too: no NUL terminator, so reads past size show up. */
	(void)dnsver_parse_txt((const char *)data, size, &v);
	return 0;
}
