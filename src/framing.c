/* framing.c -- refuses requests whose body length two parties could read differently. */
#include "framing.h"

#include <string.h>
#include <strings.h>

#include "util.h"

static int
starts_with(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

void
framing_header(struct framing *f, const char *key, const char *value)
{
	long long v;

	if ((starts_with(key, "Content-Length") && strlen(key) != strlen("Content-Length")) ||
	    (starts_with(key, "Transfer-Encoding") && strlen(key) != strlen("Transfer-Encoding"))) {
		f->mangled = 1;
		return;
	}
	if (strcasecmp(key, "Content-Length") == 0) {
		if (f->content_length++ == 0)
			f->cl_valid = 1;
		if (value != NULL && util_parse_ll(value, 0, INT64_MAX, &v) == 0 && value[0] != '-')
			f->length = (uint64_t)v;
		else
			f->cl_valid = 0;
	} else if (strcasecmp(key, "Transfer-Encoding") == 0) {
		f->transfer_encoding++;
		f->te_chunked = value != NULL && strcasecmp(value, "chunked") == 0;
	}
}

int
framing_ok(const struct framing *f)
{
	if (f->mangled)
		return 0;
	if (f->content_length > 1 || f->transfer_encoding > 1)
		return 0;
	if (f->content_length == 1)
		return f->transfer_encoding == 0 && f->cl_valid;
	return f->transfer_encoding == 0 || f->te_chunked;
}
