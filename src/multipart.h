/* multipart.h -- streaming multipart/form-data parser (RFC 7578) that passes the content of the first
 * file part (or, with multipart_each_file, of every file part) to a callback as it arrives and
 * counts the file parts. Memory is fixed at creation.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_MULTIPART_H
#define CLAMREST_MULTIPART_H

#include <stddef.h>

#define MULTIPART_BOUNDARY_MAX		70	/* bytes; RFC 2046 allows 1 to 70 */
#define MULTIPART_HEADER_MAX_BYTES	8192	/* 8K: one part's header block, blank line included */
#define MULTIPART_FILENAME_MAX		255	/* bytes of a filename kept for the log */

/* Receives the bytes of the first file part (a part whose Content-Disposition has a filename
 * parameter), in order. Returns 0 to go on, -1 to stop parsing (multipart_feed then fails). */
typedef int (*multipart_data_cb)(void *ud, const char *data, size_t len);

/* Called when a file part's headers are complete, before its content (multipart_each_file only):
 * filename as the client gave it (a quoted value unescaped; filename* percent-decoded, preferred
 * over filename as RFC 6266 says), field the part's name parameter ("" when none); neither is
 * NUL-terminated. Returns 0 to go on, -1 to stop parsing (multipart_feed then fails). */
typedef int (*multipart_part_cb)(void *ud, const char *filename, size_t flen, const char *field,
    size_t nlen);

struct multipart;

/* NULL when content_type is not multipart/form-data or has no usable boundary. */
struct multipart *multipart_new(const char *content_type, multipart_data_cb cb, void *ud);
void multipart_free(struct multipart *m);
/* Every file part's content goes to the data callback, each announced by part first (the data of
 * one part ends where the next part's announcement comes). Call before the first feed; -1 when
 * out of memory (m is then as before). */
int multipart_each_file(struct multipart *m, multipart_part_cb part);

/* Lines end in CRLF or bare LF, as the first delimiter line ends; every delimiter and header line
 * must then end the same way. A file part is one whose Content-Disposition has a filename (or
 * filename*) parameter, whatever its type. Refused as malformed: a "--boundary" that some reader
 * (Werkzeug takes CR, LF or CRLF before one) could take for a delimiter but is not this body's, a
 * CR inside a header line, a part without Content-Disposition or with two, a
 * Content-Transfer-Encoding other than 7bit, 8bit or binary, a folded header line. */
/* Feeds the next bytes of the body; -1 on malformed input or when the callback stopped. */
int multipart_feed(struct multipart *m, const char *data, size_t len);
/* At the end of the body: 0 when the closing boundary was seen, -1 otherwise. */
int multipart_finish(struct multipart *m);
/* File parts seen so far (the first one's content went to the callback). */
unsigned multipart_file_count(const struct multipart *m);
/* The filename parameter of the first file part as sent (quotes removed, nothing decoded, cut to
 * MULTIPART_FILENAME_MAX bytes; may hold any byte but NUL), or NULL before its headers are in. */
const char *multipart_filename(const struct multipart *m);

#endif
