/* test_reader.c -- the second archive reader (reader.c) on archives made by Python's zipfile/bz2:
 * what it lists and hands back, what it skips as scanned, its limits and its findings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "reader.h"

static const char eicar[] =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/* The bytes a Python snippet writes to stdout (it gets EICAR as E). Caller frees. */
static unsigned char *
make(const char *code, size_t *len)
{
	char cmd[2048];
	unsigned char *buf = malloc(1 << 20);
	FILE *p;

	assert_non_null(buf);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"import io, sys, zipfile, bz2; "
	    "E = b'X5O!P%%@AP[4\\\\\\\\PZX54(P^)7CC)7}\\$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!\\$H+H*'; "
	    "%s\"", code);
	assert_non_null(p = popen(cmd, "r"));
	*len = fread(buf, 1, 1 << 20, p);
	assert_int_equal(pclose(p), 0);
	assert_true(*len > 0);
	return buf;
}

#define ZIP2 "b = io.BytesIO(); z = zipfile.ZipFile(b, 'w', zipfile.ZIP_LZMA); " \
	"z.writestr('a.txt', b'hello reader ' * 50); z.writestr('e.com', E); z.close(); " \
	"sys.stdout.buffer.write(b.getvalue())"

static struct reader_limits
limits(void)
{
	return (struct reader_limits){ .max_file_size = 1 << 20, .budget = 8 << 20,
	    .max_files = 100, .max_recursion = 5, .encrypted_alert = 1 };
}

static void
test_lists_and_hands_back_members(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_member *m;
	size_t len;
	unsigned char *zip = make(ZIP2, &len);
	unsigned id, got = 0;
	int is_limit, eicar_seen = 0;

	(void)state;
	assert_int_equal(reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id), 1);
	assert_true(id > 0);
	assert_true(reader_covered(r, id, 2));
	assert_false(reader_covered(r, id, 3));
	reader_set_upload(r, zip, len);
	while ((m = reader_next(r)) != NULL) {
		got++;
		eicar_seen |= m->len == strlen(eicar) && memcmp(m->data, eicar, m->len) == 0;
		assert_int_equal(m->depth, 1);
		assert_int_equal(m->path[m->path_len - 1], '\0');
		reader_member_free(m);
	}
	assert_int_equal(got, 2);
	assert_true(eicar_seen);
	assert_null(reader_finding(r, &is_limit));
	reader_free(r);
	free(zip);
}

/* A member whose content libclamav scanned (a layer with the same bytes) is not handed back. */
static void
test_skips_what_libclamav_scanned(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_member *m;
	size_t len;
	unsigned char *zip = make(ZIP2, &len);
	unsigned id;

	(void)state;
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_int_equal(reader_layer(r, eicar, strlen(eicar), "CL_TYPE_TEXT_ASCII", "e.com", 1, "", 0,
	    0, &id), 0);
	reader_prune(r);
	reader_set_upload(r, zip, len);
	assert_non_null(m = reader_next(r));
	assert_false(m->len == strlen(eicar) && memcmp(m->data, eicar, m->len) == 0);
	reader_member_free(m);
	assert_null(reader_next(r));
	reader_free(r);
	free(zip);
}

static void
test_limits(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r;
	size_t len;
	unsigned char *zip = make(ZIP2, &len);
	unsigned id;
	int is_limit;

	(void)state;
	lim.max_file_size = 100;	/* a.txt has 650 bytes */
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_FILE_SIZE);
	assert_true(is_limit);
	reader_free(r);
	lim = limits();
	lim.max_files = 1;
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_FILES);
	reader_free(r);
	lim = limits();
	lim.max_recursion = 3;
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 3, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_RECURSION);
	reader_free(r);
	lim = limits();
	lim.budget = 100;
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_SCAN_SIZE);
	reader_free(r);
	free(zip);
}

/* Two bzip2 streams: typed CL_TYPE_BZ, the one member is all of it (both streams). */
static void
test_multistream_bzip2_whole(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_member *m;
	size_t len;
	unsigned char *bz = make("sys.stdout.buffer.write(bz2.compress(b'first\\\\n' * 100) + "
	    "bz2.compress(E))", &len);
	unsigned id;

	(void)state;
	assert_int_equal(reader_layer(r, bz, len, "CL_TYPE_BZ", NULL, 0, "", 0, 0, &id), 1);
	reader_set_upload(r, bz, len);
	assert_non_null(m = reader_next(r));
	assert_int_equal(m->len, 600 + strlen(eicar));
	assert_memory_equal(m->data + 600, eicar, strlen(eicar));
	reader_member_free(m);
	reader_free(r);
	free(bz);
}

/* Text is no archive; a method libarchive lacks is a hole unless libclamav scanned that name and
 * size. */
static void
test_text_and_holes(void **state)
{
	static const char text[] = "just some text, mentioning PK and 7z and -lh5- in passing\n";
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	size_t len;
	unsigned char *zip = make("b = bytearray(); z = io.BytesIO(); "
	    "w = zipfile.ZipFile(z, 'w'); w.writestr('odd.bin', E * 3); w.close(); b = bytearray(z.getvalue()); "
	    "b[8] = 97; i = b.find(b'PK\\\\x01\\\\x02'); b[i + 10] = 97; sys.stdout.buffer.write(bytes(b))", &len);
	unsigned id;
	int is_limit;

	(void)state;
	assert_int_equal(reader_layer(r, text, sizeof(text) - 1, "CL_TYPE_TEXT_ASCII", NULL, 0, "", 0,
	    0, &id), 0);
	assert_int_equal(reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id), 1);
	assert_false(reader_covered(r, id, 1));
	assert_string_equal(reader_finding(r, &is_limit), READER_UNSCANNED);
	assert_false(is_limit);
	/* libclamav scanned a member of that name and size: not a hole. */
	reader_layer(r, zip, 3 * strlen(eicar), "CL_TYPE_BINARY_DATA", "odd.bin", 1, "", 0, 0, &id);
	assert_null(reader_finding(r, &is_limit));
	reader_free(r);
	free(zip);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_and_hands_back_members),
		cmocka_unit_test(test_skips_what_libclamav_scanned),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_multistream_bzip2_whole),
		cmocka_unit_test(test_text_and_holes),
	};

	log_set_level("ERROR");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
