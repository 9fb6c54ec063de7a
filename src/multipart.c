/* multipart.c -- streaming multipart/form-data parser that hands the first file part (or every one) to
 * a callback straight from the caller's buffers, keeping only fixed-size state between feeds. */
#include "multipart.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Line ends: a body uses CRLF (RFC 2046) or, as some clients write it, bare LF; the line end of its
 * first delimiter line decides which, and every structural line end (delimiter and header lines)
 * must then be that one. Werkzeug (upstream's parser) also takes CR, LF or CRLF before any
 * "--boundary" for a delimiter, and the first "--boundary" of the preamble even without one, where
 * a strict parser sees content. So any "--boundary" some parser could take for a delimiter is one
 * here or the body is refused: in the preamble every "--boundary", in a part every one at a line
 * start (after CR, LF or the blank line ending the headers); it must be the body's own delimiter.
 * A part's content is then the same bytes for every reader, which is what the scan relies on.
 */
#define MP_DASHB_MAX	(2 + MULTIPART_BOUNDARY_MAX)	/* "--" boundary */
#define MP_HOLD_MAX	(2 + MP_DASHB_MAX)		/* a line end and part of "--" boundary */

/* What came before the bytes being searched, when it was not a byte of content. */
#define MP_PREV_START	(-1)	/* the start of the body */
#define MP_PREV_HDR	(-2)	/* the blank line that ends a part's headers */

enum mp_lb {		/* what precedes a "--boundary" */
	MP_LB_NONE,	/* a byte that ends no line */
	MP_LB_START,
	MP_LB_HDR,
	MP_LB_CRLF,
	MP_LB_LF,
	MP_LB_CR,
};

enum mp_mode { MP_MODE_UNKNOWN, MP_MODE_CRLF, MP_MODE_LF };

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
	multipart_part_cb	 part;		/* multipart_each_file: every file part streams */
	void			*ud;
	enum mp_state		 state;
	unsigned		 files;
	int			 is_file;	/* the current part has a filename */
	int			 has_disposition;	/* the current part has a Content-Disposition */
	int			 streaming;	/* the current part is the first file part */
	char			 name[MULTIPART_FILENAME_MAX + 1];	/* the current part's filename */
	int			 name_star;	/* name came from filename*: a plain one replaces it */
	char			 filename[MULTIPART_FILENAME_MAX + 1];	/* the first file part's */
	enum mp_mode		 mode;		/* the body's line end, from its first delimiter */
	enum mp_lb		 first_lb;	/* what preceded the first delimiter */
	int			 prev, pprev;	/* the last two bytes passed by, or MP_PREV_* */
	char			 dashb[MP_DASHB_MAX];
	size_t			 dlen;
	char			 hold[MP_HOLD_MAX];	/* what may begin a delimiter, kept back */
	size_t			 holdlen;
	size_t			 hdrtotal;	/* bytes of the current header block so far */
	size_t			 linelen;
	char			 line[MULTIPART_HEADER_MAX_BYTES];
	/* The current part's names (multipart_each_file only, which allocates them: a single-file
	 * parse does not pay for them); each fits in one header line. */
	size_t			 fnamelen, fieldlen;
	int			 fname_star;	/* fname came from filename*, which wins */
	char			*names;		/* 2 x MULTIPART_HEADER_MAX_BYTES: fname, then field */
	char			*fname, *field;
};

/* One name=value parameter of a header value; a quoted value is given without its quotes. */
struct mp_param {
	const char	*name;
	size_t		 namelen;
	const char	*value;
	size_t		 valuelen;
	int		 quoted;
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
	p->quoted = 1;
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
		p->quoted = 0;
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
	memcpy(m->dashb, "--", 2);
	memcpy(m->dashb + 2, b, blen);
	m->dlen = 2 + blen;
	m->prev = m->pprev = MP_PREV_START;
	m->state = MP_PREAMBLE;
	return m;
}

void
multipart_free(struct multipart *m)
{
	if (m == NULL)
		return;
	free(m->names);
	free(m);
}

int
multipart_each_file(struct multipart *m, multipart_part_cb part)
{
	if ((m->names = malloc(2 * MULTIPART_HEADER_MAX_BYTES)) == NULL)
		return -1;
	m->fname = m->names;
	m->field = m->names + MULTIPART_HEADER_MAX_BYTES;
	m->part = part;
	return 0;
}

/* Passes content on when it belongs to the first file part; everything else is dropped. */
static int
mp_emit(struct multipart *m, const char *data, size_t len)
{
	if (len == 0 || m->state != MP_BODY || !m->streaming || m->cb == NULL)
		return 0;
	return m->cb(m->ud, data, len) == 0 ? 0 : -1;
}

/* Passes bytes by: content of the first file part goes to the callback, the rest is dropped. */
static int
mp_pass(struct multipart *m, const char *data, size_t len)
{
	if (len >= 2) {
		m->pprev = (unsigned char)data[len - 2];
		m->prev = (unsigned char)data[len - 1];
	} else if (len == 1) {
		m->pprev = m->prev;
		m->prev = (unsigned char)data[0];
	}
	return mp_emit(m, data, len);
}

/* What precedes the "--boundary" at b + j (bytes before b were passed by). */
static enum mp_lb
mp_lb_kind(const struct multipart *m, const char *b, size_t j)
{
	int b1 = j >= 1 ? (unsigned char)b[j - 1] : m->prev;
	int b0 = j >= 2 ? (unsigned char)b[j - 2] : j == 1 ? m->prev : m->pprev;

	if (b1 == MP_PREV_START)
		return MP_LB_START;
	if (b1 == MP_PREV_HDR)
		return MP_LB_HDR;
	if (b1 == '\r')
		return MP_LB_CR;
	if (b1 != '\n')
		return MP_LB_NONE;
	return b0 == '\r' ? MP_LB_CRLF : MP_LB_LF;
}

static size_t
mp_lb_len(enum mp_lb lb)
{
	return lb == MP_LB_CRLF ? 2 : lb == MP_LB_LF || lb == MP_LB_CR ? 1 : 0;
}

/* The first "--boundary" in b that some parser could take for a delimiter (see the top). */
static const char *
mp_search(const struct multipart *m, const char *b, size_t n, enum mp_lb *lb)
{
	const char *p = b, *hit;

	while ((hit = memmem(p, (size_t)(b + n - p), m->dashb, m->dlen)) != NULL) {
		*lb = mp_lb_kind(m, b, (size_t)(hit - b));
		if (m->state == MP_PREAMBLE || *lb != MP_LB_NONE)
			return hit;
		p = hit + 1;
	}
	return NULL;
}

/* Bytes at the end of b that may begin a delimiter: a line end and part of "--boundary", or part of
 * "--boundary" alone in the preamble or right after a line end passed by. A boundary holds no CR or
 * LF, so only the last line end can begin one. */
static size_t
mp_tail(const struct multipart *m, const char *b, size_t n)
{
	size_t k = n < m->dlen - 1 ? n : m->dlen - 1, s;

	while (k > 0 && memcmp(b + n - k, m->dashb, k) != 0)
		k--;
	s = n - k;
	if (s > 0 && (b[s - 1] == '\n' || b[s - 1] == '\r')) {
		s--;
		if (b[s] == '\n' && s > 0 && b[s - 1] == '\r')
			s--;
	} else if (m->state != MP_PREAMBLE && (s > 0 || mp_lb_kind(m, b, 0) == MP_LB_NONE))
		s = n;	/* not at a line start: no reader takes it for a delimiter */
	return n - s;
}

/* A "--boundary" some parser takes for a delimiter: it must be this body's, else the body is
 * refused. In the preamble it opens the first part (the line end after it fixes the mode). */
static int
mp_delimiter(struct multipart *m, enum mp_lb lb)
{
	if (m->state == MP_PREAMBLE) {
		if (lb != MP_LB_START && lb != MP_LB_CRLF && lb != MP_LB_LF)
			return -1;
		m->first_lb = lb;
	} else if (lb != (m->mode == MP_MODE_CRLF ? MP_LB_CRLF : MP_LB_LF))
		return -1;
	m->streaming = 0;
	m->state = MP_DELIM_END;
	return 0;
}

/* Passes the content before the delimiter found at hit in b (its line end excluded), then takes the
 * delimiter. */
static int
mp_hit(struct multipart *m, const char *b, const char *hit, enum mp_lb lb)
{
	size_t j = (size_t)(hit - b), lbl = mp_lb_len(lb);

	/* A line end before b was held back, never passed: this cannot happen; refuse, not guess. */
	if (j < lbl || mp_pass(m, b, j - lbl) == -1)
		return -1;
	return mp_delimiter(m, lb);
}

/* Goes on with what the last feed held back, joined with the start of d. */
static int
mp_joined(struct multipart *m, const char *d, size_t n, size_t *used)
{
	char j[MP_HOLD_MAX + MP_DASHB_MAX + 2];
	size_t h = m->holdlen, take = n < m->dlen + 2 ? n : m->dlen + 2, jl = h + take, keep;
	const char *hit;
	enum mp_lb lb;

	memcpy(j, m->hold, h);
	memcpy(j + h, d, take);
	m->holdlen = 0;
	hit = mp_search(m, j, jl, &lb);
	if (hit != NULL) {
		/* The hold holds no whole "--boundary": the delimiter ends inside d. */
		*used = (size_t)(hit - j) + m->dlen - h;
		return mp_hit(m, j, hit, lb);
	}
	keep = mp_tail(m, j, jl);
	if (jl - keep >= h) {	/* nothing held is part of a delimiter: d is searched afresh */
		*used = 0;
		return mp_pass(m, j, h);
	}
	/* Only when d was short (take == n): the held bytes and d may still begin one. */
	if (mp_pass(m, j, jl - keep) == -1)
		return -1;
	memcpy(m->hold, j + jl - keep, keep);
	m->holdlen = keep;
	*used = take;
	return 0;
}

/* Passes on content up to the next delimiter, or up to a tail that may begin one. */
static int
mp_content(struct multipart *m, const char *d, size_t n, size_t *used)
{
	const char *hit;
	enum mp_lb lb;
	size_t keep;

	if (m->holdlen > 0)
		return mp_joined(m, d, n, used);
	hit = mp_search(m, d, n, &lb);
	if (hit != NULL) {
		*used = (size_t)(hit - d) + m->dlen;
		return mp_hit(m, d, hit, lb);
	}
	keep = mp_tail(m, d, n);
	if (mp_pass(m, d, n - keep) == -1)
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
	m->fnamelen = 0;
	m->fieldlen = 0;
	m->fname_star = 0;
	m->name[0] = '\0';
	m->name_star = 0;
}

/* The line end of a delimiter line: the first one fixes the body's mode, which its preamble's line
 * end before the delimiter (if any) must agree with; every later one must be the same. */
static int
mp_line_end(struct multipart *m, enum mp_mode mode)
{
	if (m->mode == MP_MODE_UNKNOWN) {
		if ((m->first_lb == MP_LB_CRLF && mode != MP_MODE_CRLF) ||
		    (m->first_lb == MP_LB_LF && mode != MP_MODE_LF))
			return -1;
		m->mode = mode;
	} else if (m->mode != mode)
		return -1;
	mp_part_begin(m);
	return 0;
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
		return mp_line_end(m, MP_MODE_CRLF);
	} else if (c == '-' && m->state == MP_DELIM_END) {
		m->state = MP_DASH;
	} else if (mp_ws(c)) {
		m->state = MP_PAD;
	} else if (c == '\r') {
		m->state = MP_CR;
	} else if (c == '\n') {
		return mp_line_end(m, MP_MODE_LF);
	} else
		return -1;
	return 0;
}

/* Copies a parameter's value to out (room for MULTIPART_HEADER_MAX_BYTES, which the value, a piece
 * of one header line, never exceeds): a quoted value without its backslash escapes; an RFC 5987
 * value (filename*: charset'language'percent-encoded) percent-decoded, whatever its charset. */
static size_t
mp_param_copy(const struct mp_param *p, int ext, char *out)
{
	const char *v = p->value, *end = p->value + p->valuelen, *q;
	size_t o = 0;
	int hi, lo;

	if (ext && (q = memchr(v, '\'', p->valuelen)) != NULL &&
	    (q = memchr(q + 1, '\'', (size_t)(end - q - 1))) != NULL) {
		for (v = q + 1; v < end; v++) {
			if (*v == '%' && end - v >= 3 && (hi = util_hex_digit(v[1])) >= 0 &&
			    (lo = util_hex_digit(v[2])) >= 0) {
				out[o++] = (char)(hi << 4 | lo);
				v += 2;
			} else
				out[o++] = *v;
		}
		return o;
	}
	for (; v < end; v++) {
		if (p->quoted && *v == '\\' && v + 1 < end)
			v++;
		out[o++] = *v;
	}
	return o;
}

/* Keeps the names of a part for multipart_each_file's callback. */
static void
mp_keep_names(struct multipart *m, const struct mp_param *p)
{
	if (m->part == NULL)
		return;
	if (mp_eq(p->name, p->namelen, "filename*")) {
		m->fnamelen = mp_param_copy(p, 1, m->fname);
		m->fname_star = 1;
	} else if (mp_eq(p->name, p->namelen, "filename") && !m->fname_star)
		m->fnamelen = mp_param_copy(p, 0, m->fname);
	else if (mp_eq(p->name, p->namelen, "name"))
		m->fieldlen = mp_param_copy(p, 0, m->field);
}

/* Keeps a filename parameter's value as given (cut to MULTIPART_FILENAME_MAX bytes) for the log;
 * a plain filename wins over filename* (RFC 7578 4.2 asks senders for the plain one). */
static void
mp_filename(struct multipart *m, const struct mp_param *p)
{
	int star = p->namelen == strlen("filename*");
	size_t n = p->valuelen < MULTIPART_FILENAME_MAX ? p->valuelen : MULTIPART_FILENAME_MAX;

	if (!m->is_file || (m->name_star && !star)) {
		memcpy(m->name, p->value, n);
		m->name[n] = '\0';
		m->name_star = star;
	}
	m->is_file = 1;
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
			mp_filename(m, &p);
		mp_keep_names(m, &p);
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
		m->streaming = m->part != NULL || m->files == 1;
		if (m->files == 1)
			memcpy(m->filename, m->name, sizeof(m->filename));
		if (m->part != NULL && m->part(m->ud, m->fname, m->fnamelen, m->field,
		    m->fieldlen) != 0)
			return -1;
	}
	m->state = MP_BODY;
	m->prev = m->pprev = MP_PREV_HDR;
	return 0;
}

/* Collects one header line, ending as the body's lines end, within the header block's fixed cap. */
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
	/* The body's own line end, and no other CR: Werkzeug ends lines (and finds the blank line
	 * that ends the headers) at a CR too. */
	if (m->mode == MP_MODE_CRLF) {
		if (len == 0 || m->line[len - 1] != '\r')
			return -1;
		len--;
	}
	if (memchr(m->line, '\r', len) != NULL)
		return -1;
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

const char *
multipart_filename(const struct multipart *m)
{
	return m->files > 0 ? m->filename : NULL;
}
