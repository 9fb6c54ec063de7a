/* multipart.c -- streaming multipart/form-data parser that hands the first file part to a callback
 * straight from the caller's buffers, keeping only fixed-size state between feeds. */
#include "multipart.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Every delimiter is "\r\n--" boundary, the first one too: the parser starts as if a line had just
 * ended, so a body that opens with the boundary needs no special case. A boundary holds no CR or
 * LF, so the delimiter's only CR is its first byte; that keeps the search simple (see mp_held).
 */
#define MP_DELIM_PREFIX		"\r\n--"
#define MP_DELIM_PREFIX_LEN	4
#define MP_DELIM_MAX		(MP_DELIM_PREFIX_LEN + MULTIPART_BOUNDARY_MAX)

/*
 * Content is searched CR by CR with memchr, which is fastest on real files but slow when CRs are
 * dense; then memmem takes over, which is fast there but slow when the content repeats the
 * boundary's bytes (all dashes, say). Past MP_CR_MISSES false CRs, more than one per
 * MP_CR_SPACING bytes means dense.
 */
#define MP_CR_MISSES		16
#define MP_CR_SPACING		32	/* bytes */

enum mp_state {
	MP_PREAMBLE,	/* before the first delimiter; discarded */
	MP_DELIM_END,	/* right after a delimiter: "--", padding or the line end comes next */
	MP_PAD,		/* transport padding after a delimiter */
	MP_CR,		/* the CR ending a delimiter line; LF must follow */
	MP_DASH,	/* the first '-' of a close delimiter */
	MP_HEADERS,
	MP_BODY,
	MP_EPILOGUE,	/* after the close delimiter; ignored */
	MP_ERROR	/* sticky: every later feed fails */
};

struct multipart {
	multipart_data_cb	 cb;
	void			*ud;
	enum mp_state		 state;
	unsigned		 files;
	int			 is_file;	/* the current part has a filename */
	int			 has_disposition;	/* the current part has a Content-Disposition */
	int			 streaming;	/* the current part is the first file part */
	char			 delim[MP_DELIM_MAX];
	size_t			 delimlen;
	char			 hold[MP_DELIM_MAX];	/* a delimiter prefix that ended the last feed */
	size_t			 holdlen;
	size_t			 hdrtotal;	/* bytes of the current header block so far */
	size_t			 linelen;
	char			 line[MULTIPART_HEADER_MAX_BYTES];
};

/* One name=value parameter of a header value; a quoted value is given without its quotes. */
struct mp_param {
	const char	*name;
	size_t		 namelen;
	const char	*value;
	size_t		 valuelen;
};

static int
mp_eq(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && strncasecmp(s, lit, len) == 0;
}

static int
mp_ws(char c)
{
	return c == ' ' || c == '\t';
}

static const char *
mp_skip_ws(const char *s, const char *end)
{
	while (s < end && mp_ws(*s))
		s++;
	return s;
}

/* Returns the end of a run of bytes that stops at any byte of stops or at end. */
static const char *
mp_span(const char *s, const char *end, const char *stops)
{
	while (s < end && *s != '\0' && strchr(stops, *s) == NULL)
		s++;
	return s;
}

/* Reads the leading token of a header value ("multipart/form-data", "form-data"). */
static int
mp_value_type(const char **sp, const char *end, const char **type, size_t *typelen)
{
	const char *s = mp_skip_ws(*sp, end);

	*type = s;
	s = mp_span(s, end, "; \t");
	*typelen = (size_t)(s - *type);
	s = mp_skip_ws(s, end);
	if (s < end && *s != ';')
		return -1;
	*sp = s;
	return 0;
}

/* Reads a quoted-string whose opening quote is at *sp; backslash escapes are left in the value. */
static int
mp_quoted(const char **sp, const char *end, struct mp_param *p)
{
	const char *s = *sp + 1;

	p->value = s;
	while (s < end && *s != '"') {
		if (*s == '\\' && s + 1 < end)
			s++;
		s++;
	}
	if (s >= end)
		return -1;
	p->valuelen = (size_t)(s - p->value);
	*sp = s + 1;
	return 0;
}

/* Reads the next parameter after *sp: 1 when one was read, 0 at the end, -1 when malformed. */
static int
mp_next_param(const char **sp, const char *end, struct mp_param *p)
{
	const char *s = mp_skip_ws(*sp, end);

	/* Empty parameters (";;", a trailing ';') are tolerated: some clients send them. */
	while (s < end && *s == ';')
		s = mp_skip_ws(s + 1, end);
	if (s == end)
		return 0;
	p->name = s;
	s = mp_span(s, end, "=; \t");
	p->namelen = (size_t)(s - p->name);
	s = mp_skip_ws(s, end);
	if (p->namelen == 0 || s == end || *s != '=')
		return -1;
	s = mp_skip_ws(s + 1, end);
	if (s < end && *s == '"') {
		if (mp_quoted(&s, end, p) == -1)
			return -1;
	} else {
		p->value = s;
		s = mp_span(s, end, "; \t\"");
		p->valuelen = (size_t)(s - p->value);
		if (p->valuelen == 0)
			return -1;
	}
	s = mp_skip_ws(s, end);
	if (s < end && *s != ';')
		return -1;
	*sp = s;
	return 1;
}

/* RFC 2046 bchars; a quoted boundary with a backslash or quote in it is refused here too. */
static int
mp_boundary_valid(const char *b, size_t len)
{
	if (len < 1 || len > MULTIPART_BOUNDARY_MAX || b[len - 1] == ' ')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)b[i];

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			continue;
		if (c == '\0' || strchr("'()+_,-./:=? ", c) == NULL)
			return 0;
	}
	return 1;
}

static int
mp_find_boundary(const char *ct, const char **bp, size_t *blenp)
{
	const char *s = ct, *end = ct + strlen(ct), *type;
	struct mp_param p;
	size_t typelen;
	int r, found = 0;

	if (mp_value_type(&s, end, &type, &typelen) == -1 ||
	    !mp_eq(type, typelen, "multipart/form-data"))
		return -1;
	for (;;) {
		r = mp_next_param(&s, end, &p);
		if (r != 1)
			break;
		if (!mp_eq(p.name, p.namelen, "boundary"))
			continue;
		/* With two boundaries, which one the client meant would be a guess. */
		if (found)
			return -1;
		found = 1;
		*bp = p.value;
		*blenp = p.valuelen;
	}
	if (r == -1 || !found || !mp_boundary_valid(*bp, *blenp))
		return -1;
	return 0;
}

struct multipart *
multipart_new(const char *content_type, multipart_data_cb cb, void *ud)
{
	struct multipart *m;
	const char *b = NULL;
	size_t blen = 0;

	if (content_type == NULL || mp_find_boundary(content_type, &b, &blen) == -1)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->cb = cb;
	m->ud = ud;
	memcpy(m->delim, MP_DELIM_PREFIX, MP_DELIM_PREFIX_LEN);
	memcpy(m->delim + MP_DELIM_PREFIX_LEN, b, blen);
	m->delimlen = MP_DELIM_PREFIX_LEN + blen;
	/* The line end the body is pretended to start after (see the top of the file). */
	memcpy(m->hold, "\r\n", 2);
	m->holdlen = 2;
	m->state = MP_PREAMBLE;
	return m;
}

void
multipart_free(struct multipart *m)
{
	free(m);
}

/* Passes content on when it belongs to the first file part; everything else is dropped. */
static int
mp_emit(struct multipart *m, const char *data, size_t len)
{
	if (len == 0 || m->state != MP_BODY || !m->streaming || m->cb == NULL)
		return 0;
	return m->cb(m->ud, data, len) == 0 ? 0 : -1;
}

static void
mp_delimiter_seen(struct multipart *m)
{
	m->streaming = 0;
	m->state = MP_DELIM_END;
}

/* Goes on matching the delimiter prefix that the previous feed ended with. */
static int
mp_held(struct multipart *m, const char *d, size_t n, size_t *used)
{
	size_t need = m->delimlen - m->holdlen;
	size_t k = n < need ? n : need;
	size_t held = m->holdlen;

	if (memcmp(d, m->delim + held, k) != 0) {
		/* The held bytes start with the delimiter's only CR, so no delimiter starts inside
		 * them after it: they are all content, and d is searched afresh. */
		m->holdlen = 0;
		*used = 0;
		return mp_emit(m, m->hold, held);
	}
	*used = k;
	if (k < need) {
		memcpy(m->hold + held, d, k);
		m->holdlen += k;
		return 0;
	}
	m->holdlen = 0;
	mp_delimiter_seen(m);
	return 0;
}

/* Finds the first whole delimiter in d, NULL when there is none. */
static const char *
mp_search(const char *d, size_t n, const char *delim, size_t dlen)
{
	const char *p = d, *end = d + n, *cr;
	size_t misses = 0;

	for (;;) {
		cr = memchr(p, '\r', (size_t)(end - p));
		if (cr == NULL || (size_t)(end - cr) < dlen)
			return NULL;
		if (cr[1] == '\n' && memcmp(cr, delim, dlen) == 0)
			return cr;
		p = cr + 1;
		misses++;
		if (misses > MP_CR_MISSES && misses * MP_CR_SPACING > (size_t)(p - d))
			return memmem(p, (size_t)(end - p), delim, dlen);
	}
}

/* Passes on content up to the next delimiter, or up to a tail that may begin one. */
static int
mp_content(struct multipart *m, const char *d, size_t n, size_t *used)
{
	const char *hit, *cr;
	size_t tail, keep = 0;

	if (m->holdlen > 0)
		return mp_held(m, d, n, used);
	hit = mp_search(d, n, m->delim, m->delimlen);
	if (hit != NULL) {
		if (mp_emit(m, d, (size_t)(hit - d)) == -1)
			return -1;
		*used = (size_t)(hit - d) + m->delimlen;
		mp_delimiter_seen(m);
		return 0;
	}
	/* Only the last CR can start a delimiter prefix: an earlier one would have a CR inside. */
	tail = n < m->delimlen - 1 ? n : m->delimlen - 1;
	cr = memrchr(d + n - tail, '\r', tail);
	if (cr != NULL && memcmp(cr, m->delim, (size_t)(d + n - cr)) == 0)
		keep = (size_t)(d + n - cr);
	if (mp_emit(m, d, n - keep) == -1)
		return -1;
	memcpy(m->hold, d + n - keep, keep);
	m->holdlen = keep;
	*used = n;
	return 0;
}

static void
mp_part_begin(struct multipart *m)
{
	m->state = MP_HEADERS;
	m->hdrtotal = 0;
	m->linelen = 0;
	m->is_file = 0;
	m->has_disposition = 0;
}

/* Steps through what follows a delimiter: "--" to close, or padding and a line end. */
static int
mp_delim_end(struct multipart *m, char c)
{
	if (m->state == MP_DASH) {
		if (c != '-')
			return -1;
		m->state = MP_EPILOGUE;
	} else if (m->state == MP_CR) {
		if (c != '\n')
			return -1;
		mp_part_begin(m);
	} else if (c == '-' && m->state == MP_DELIM_END) {
		m->state = MP_DASH;
	} else if (mp_ws(c)) {
		m->state = MP_PAD;
	} else if (c == '\r') {
		m->state = MP_CR;
	} else if (c == '\n') {
		mp_part_begin(m);
	} else
		return -1;
	return 0;
}

/* Notes whether a Content-Disposition value names a file. As Werkzeug (upstream's parser) does, a
 * filename or filename* parameter makes a file part whatever the type (form-data, attachment,
 * inline...): a part that a stricter reading skipped would be neither counted nor scanned. A second
 * Content-Disposition in one part is refused, since readers differ on which one counts. */
static int
mp_disposition(struct multipart *m, const char *s, const char *end)
{
	struct mp_param p;
	const char *type;
	size_t typelen;
	int r;

	if (m->has_disposition || mp_value_type(&s, end, &type, &typelen) == -1 || typelen == 0)
		return -1;
	m->has_disposition = 1;
	for (;;) {
		r = mp_next_param(&s, end, &p);
		if (r != 1)
			return r;
		if (mp_eq(p.name, p.namelen, "filename") || mp_eq(p.name, p.namelen, "filename*"))
			m->is_file = 1;
	}
}

/* Only identity encodings: content in base64 or quoted-printable would be scanned as text, not as
 * the file it encodes, so such a part is refused rather than answered clean. */
static int
mp_transfer_encoding(const char *s, const char *end)
{
	const char *type;
	size_t typelen;

	if (mp_value_type(&s, end, &type, &typelen) == -1 || mp_skip_ws(s, end) != end)
		return -1;
	return mp_eq(type, typelen, "7bit") || mp_eq(type, typelen, "8bit") ||
	    mp_eq(type, typelen, "binary") ? 0 : -1;
}

static int
mp_header_line(struct multipart *m, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t namelen;

	/* A line starting with white space continues the previous header (obs-fold), which Werkzeug
	 * joins and we would not: a filename there would be seen by one and not the other. */
	if (colon == NULL || colon == line || mp_ws(line[0]))
		return -1;
	namelen = (size_t)(colon - line);
	while (namelen > 0 && mp_ws(line[namelen - 1]))
		namelen--;
	if (mp_eq(line, namelen, "Content-Transfer-Encoding"))
		return mp_transfer_encoding(colon + 1, line + len);
	if (!mp_eq(line, namelen, "Content-Disposition"))
		return 0;
	return mp_disposition(m, colon + 1, line + len);
}

/* A part without Content-Disposition is refused, as Werkzeug refuses it. */
static int
mp_headers_done(struct multipart *m)
{
	if (!m->has_disposition)
		return -1;
	if (m->is_file) {
		if (m->files < UINT_MAX)
			m->files++;
		m->streaming = m->files == 1;
	}
	m->state = MP_BODY;
	return 0;
}

/* Collects one header line (CRLF or bare LF) within the header block's fixed cap. */
static int
mp_headers(struct multipart *m, const char *d, size_t n, size_t *used)
{
	const char *nl = memchr(d, '\n', n);
	size_t take = nl != NULL ? (size_t)(nl - d) + 1 : n;
	size_t len;

	if (take > MULTIPART_HEADER_MAX_BYTES - m->hdrtotal)
		return -1;
	m->hdrtotal += take;
	*used = take;
	if (nl == NULL) {
		memcpy(m->line + m->linelen, d, take);
		m->linelen += take;
		return 0;
	}
	memcpy(m->line + m->linelen, d, take - 1);
	len = m->linelen + take - 1;
	m->linelen = 0;
	if (len > 0 && m->line[len - 1] == '\r')
		len--;
	if (len > 0)
		return mp_header_line(m, m->line, len);
	return mp_headers_done(m);
}

/* Consumes a prefix of d (possibly none, but then the state moved on); *used says how much. */
static int
mp_step(struct multipart *m, const char *d, size_t n, size_t *used)
{
	switch (m->state) {
	case MP_PREAMBLE:
	case MP_BODY:
		return mp_content(m, d, n, used);
	case MP_HEADERS:
		return mp_headers(m, d, n, used);
	case MP_EPILOGUE:
		*used = n;
		return 0;
	case MP_DELIM_END:
	case MP_PAD:
	case MP_CR:
	case MP_DASH:
		*used = 1;
		return mp_delim_end(m, d[0]);
	case MP_ERROR:
		break;
	}
	return -1;
}

int
multipart_feed(struct multipart *m, const char *data, size_t len)
{
	size_t used;

	while (len > 0 && m->state != MP_ERROR) {
		if (mp_step(m, data, len, &used) == -1) {
			m->state = MP_ERROR;
			break;
		}
		data += used;
		len -= used;
	}
	return m->state == MP_ERROR ? -1 : 0;
}

int
multipart_finish(struct multipart *m)
{
	return m->state == MP_EPILOGUE ? 0 : -1;
}

unsigned
multipart_file_count(const struct multipart *m)
{
	return m->files;
}
