/* util.h -- small helpers shared by every module: number parsing, JSON escaping, clocks.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_UTIL_H
#define CLAMREST_UTIL_H

#include <stddef.h>

/* Parses a whole decimal integer in [min, max]; no sign games, no trailing bytes. */
int util_parse_ll(const char *s, long long min, long long max, long long *out);

/* Parses a duration in seconds in [min, max]: a whole number, alone (seconds) or followed by one
 * unit, s, m, h or d ("3600", "90s", "12h", "3d"). */
int util_parse_seconds(const char *s, long long min, long long max, long long *out);

/* Appends the JSON string literal of s[0..len) (with quotes) to out at *pos; -1 if it does not fit.
 * Well-formed UTF-8 passes as it is; every other byte (a client's Latin-1, a cut sequence, an
 * overlong form, a surrogate) becomes \ufffd, so the result is always valid UTF-8 JSON. Any input
 * byte takes at most 6 output bytes. */
int util_json_str(char *out, size_t outlen, size_t *pos, const char *s, size_t len);

/* Like util_json_str, but the way Python's json.dumps writes a string (ensure_ascii, as Flask's
 * jsonify does): every byte outside printable ASCII is escaped, code points past U+FFFF as a
 * surrogate pair, \b and \f by letter; a byte that is not UTF-8 becomes \ufffd. Any input byte takes
 * at most 6 output bytes (a 4-byte sequence 12). */
int util_json_str_ascii(char *out, size_t outlen, size_t *pos, const char *s, size_t len);

/* bytes as a person reads them, in binary units with one decimal: "38.3 GiB", "256.0 MiB",
 * "512 bytes". out must hold UTIL_BYTES_MAX. */
#define UTIL_BYTES_MAX 32
void util_bytes(unsigned long long bytes, char *out, size_t outlen);

/* Seconds on a monotonic clock. */
double util_now(void);

/* Compares a and b in time independent of their contents; 1 when equal. */
int util_ct_equal(const void *a, const void *b, size_t len);

/* The value of one hex digit (either case), or -1. */
int util_hex_digit(char c);

#endif
