/* recvtrack.h -- which socket this thread read last: libmicrohttpd's error messages do not name
 * their connection, and the socket it read just before does (see server_quirks.c, chunk errors). */
#ifndef CLAMREST_RECVTRACK_H
#define CLAMREST_RECVTRACK_H

/* The descriptor the calling thread last passed to recv(2), or last noted, or -1. */
int recvtrack_last_fd(void);
/* Notes that the calling thread works for fd now (-1: none known), as a recv of it would. */
void recvtrack_note(int fd);

#endif
