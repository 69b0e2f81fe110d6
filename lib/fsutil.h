/* Files that survive a crash: whole-or-nothing replacement, directory creation, whole reads. */
#ifndef FSUTIL_H
#define FSUTIL_H

#include <stddef.h>

/* mkdir -p with mode 0755 for each missing component. 0, or -1 with errno. */
int fs_mkdir_p(const char *path);
/* Replace path with data: write a temporary file beside it, fsync, rename over path, fsync the
 * directory. Readers see the old or the new content, never a mix. 0, or -1 with errno. */
int fs_write_atomic(const char *path, const void *data, size_t len);
/* write(2) all of data, again after EINTR and short writes. 0, or -1 with errno. */
int fs_write_all(int fd, const void *data, size_t len);
/* The directory part of path into dir ("." for a bare name, "/" for a file in the root). */
void fs_dir_of(const char *path, char *dir, size_t size);
/* fsync a directory (after rename/unlink in it). */
int fs_fsync_dir(const char *dir);
/* Read a whole file (at most max bytes; EFBIG beyond). *data is NUL-terminated, caller frees. */
int fs_read_file(const char *path, char **data, size_t *len, size_t max);

#endif
