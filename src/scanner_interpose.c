/* scanner_interpose.c -- the stdio fopen64 interposer: streams libclamav opens while it loads a
 * database skip stdio's per-call locking. */
#include "scanner_priv.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>

/* glibc quirk: stdio takes a stream's lock on every call once the process has a second thread, and
 * libclamav 1.4.6 reads text databases with fgetc and feof per character: with our threads up that
 * locking was 61% of a load (perf), which took twice as long as in a single-threaded process. A
 * stream libclamav opens inside cl_load belongs to the loading thread alone (opened, read and closed
 * there), so those are switched to FSETLOCKING_BYCALLER. fopen64 is the name libclamav calls (nm -D
 * on libclamav.so.12); the executable's definition interposes it, and every other caller, or this
 * thread outside cl_load, gets the real one unchanged. */
static _Thread_local int scanner_loading;

void
scanner_loading_set(int on)
{
	scanner_loading = on;
}

FILE *
fopen64(const char *path, const char *mode)
{
	static FILE *(*_Atomic real)(const char *, const char *);
	FILE *(*fn)(const char *, const char *) = atomic_load(&real);
	FILE *f;

	if (fn == NULL) {
		*(void **)&fn = dlsym(RTLD_NEXT, "fopen64");
		if (fn == NULL) {
			errno = ENOSYS;
			return NULL;
		}
		atomic_store(&real, fn);
	}
	f = fn(path, mode);
	if (f != NULL && scanner_loading)
		__fsetlocking(f, FSETLOCKING_BYCALLER);
	return f;
}

