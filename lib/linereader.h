/* Buffered reading of newline-terminated lines from a file descriptor, blocking or not,
 * with a bound on line length so a hostile peer cannot make us hold unbounded memory. */
#ifndef LINEREADER_H
#define LINEREADER_H

#include <stddef.h>
#include <sys/types.h>

#define LR_DEFAULT_MAX (1u << 20) /* 1 MiB: far beyond any record we exchange */

enum { LR_NEED_MORE = 0, LR_LINE = 1, LR_TOOLONG = 2 };

struct linereader {
	int fd;
	char *buf;
	size_t start, len, cap;
	size_t max_line;
	unsigned long lineno; /* number of the line last returned (1-based) */
	int eof;
	int skipping; /* dropping the rest of an overlong line */
};

void lr_init(struct linereader *r, int fd, size_t max_line);
void lr_free(struct linereader *r);
/* One read(2) into the buffer: bytes read, 0 at end of file, -1 with errno (EAGAIN included). */
ssize_t lr_fill(struct linereader *r);
/* Take the next buffered line, NUL-terminated in place without its newline. A last line without
 * a newline is returned once EOF is seen. LR_TOOLONG reports (once, with lineno) a line that was
 * longer than max_line; its bytes are dropped. LR_NEED_MORE: fill again (or stop if r->eof). */
int lr_next(struct linereader *r, char **line, size_t *len);
/* Blocking convenience for filters: LR_LINE, LR_TOOLONG, or 0 at end of input; -1 on read error. */
int lr_getline(struct linereader *r, char **line, size_t *len);

#endif
