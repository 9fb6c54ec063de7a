/* recvtrack.c -- remembers, per thread, the socket recv(2) read last. libmicrohttpd calls recv by
 * that name (nm -D libmicrohttpd.so.12); the executable's definition interposes it, as
 * scanner_interpose.c's fopen64 does, and passes every call on unchanged. */
#include "recvtrack.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

static _Thread_local int recvtrack_fd = -1;

int
recvtrack_last_fd(void)
{
	return recvtrack_fd;
}

void
recvtrack_note(int fd)
{
	recvtrack_fd = fd;
}

ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*_Atomic real)(int, void *, size_t, int);
	ssize_t (*fn)(int, void *, size_t, int) = atomic_load(&real);

	if (fn == NULL) {
		*(void **)&fn = dlsym(RTLD_NEXT, "recv");
		if (fn == NULL) {
			errno = ENOSYS;
			return -1;
		}
		atomic_store(&real, fn);
	}
	recvtrack_fd = fd;
	return fn(fd, buf, len, flags);
}
