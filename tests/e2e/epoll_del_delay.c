/*
 * epoll_del_delay.so -- LD_PRELOAD fault injection for tests/e2e/test_resilience.py: every
 * EPOLL_CTL_DEL of a listening socket waits EPOLL_DEL_DELAY_MS (default 20) first, which widens
 * any window in which two threads race to take the same listening socket out of an epoll set
 * (libmicrohttpd 0.9.75's MHD_quiesce_daemon against its own worker threads) from nanoseconds to
 * milliseconds, so a test sees the race every time instead of once in many CI runs.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/socket.h>

#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	static int (*real)(int, int, int, struct epoll_event *);
	int listening = 0;
	socklen_t len = sizeof(listening);
	const char *ms;
	struct timespec ts;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
	if (op == EPOLL_CTL_DEL &&
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
		ms = getenv("EPOLL_DEL_DELAY_MS");
		ts.tv_sec = 0;
		ts.tv_nsec = (ms != NULL ? atol(ms) : 20) * 1000000L;
		nanosleep(&ts, NULL);
	}
	return real(epfd, op, fd, ev);
}
