/* See outq.h. */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int outq_put(struct outq *q, const void *p, size_t n)
{
	if (q->len + n > q->cap) {
		size_t ncap = q->cap ? q->cap : 4096;
		while (ncap < q->len + n)
			ncap *= 2;
		char *b = realloc(q->buf, ncap);
		if (!b)
			return -1;
		q->buf = b;
		q->cap = ncap;
	}
	memcpy(q->buf + q->len, p, n);
	q->len += n;
	return 0;
}

int outq_flush(struct outq *q, int fd)
{
	size_t done = 0;
	int rc = 0;
	while (done < q->len) {
		ssize_t n = q->sock ? send(fd, q->buf + done, q->len - done, MSG_NOSIGNAL | MSG_DONTWAIT)
		                    : write(fd, q->buf + done, q->len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				rc = -1;
			break;
		}
		done += (size_t)n;
	}
	if (done) {
		memmove(q->buf, q->buf + done, q->len - done); /* errno stays the write's */
		q->len -= done;
	}
	return rc;
}

void outq_free(struct outq *q)
{
	free(q->buf);
	q->buf = NULL;
	q->len = q->cap = 0;
}
