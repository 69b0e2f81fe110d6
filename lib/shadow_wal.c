#define _GNU_SOURCE
#include "shadow_wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define WAL_MAX (64u << 20) /* checkpoint once the log is this large... */
#define WAL_SECONDS 2       /* ...or this old */

struct shadow_wal {
	int dirfd, waldirfd, lockfd, ckptfd, logfd;
	char *dir;
	uint64_t gen; /* generation of the log that logfd holds */
	uint64_t last_gen, last_mark, last_size; /* the state this process wrote last, and the log's size then */
	uint64_t batch_at; /* where the last batch appended starts */
	int wrote;
	size_t max;
	struct timespec switched;
	long crash_after_append; /* tests: die between the log and the documents, at this append */
	/* the checkpoint thread */
	pthread_t th;
	int started, job, quit;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static int lock_ex(int fd)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* The lock file holds two little-endian 64-bit numbers: the log's generation (bumped when a
 * checkpoint starts a new log) and the size of the log that is applied to the documents. */
static void read_state(struct shadow_wal *w, uint64_t *gen, uint64_t *mark)
{
	unsigned char b[16];
	*gen = *mark = 0;
	if (pread(w->lockfd, b, sizeof b, 0) != (ssize_t)sizeof b)
		return;
	for (int i = 7; i >= 0; i--) {
		*gen = *gen << 8 | b[i];
		*mark = *mark << 8 | b[8 + i];
	}
}

static void write_state(struct shadow_wal *w, uint64_t gen, uint64_t mark, uint64_t size)
{
	unsigned char b[16];
	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(gen >> (8 * i));
		b[8 + i] = (unsigned char)(mark >> (8 * i));
	}
	if (pwrite(w->lockfd, b, sizeof b, 0) != (ssize_t)sizeof b) {
		log_warn("unable to write %s/.wal/lock: %s", w->dir, strerror(errno));
		w->wrote = 0;
		return;
	}
	w->last_gen = gen;
	w->last_mark = mark;
	w->last_size = size;
	w->wrote = 1;
}

static int open_log(struct shadow_wal *w, uint64_t gen)
{
	if (w->logfd >= 0)
		close(w->logfd);
	w->logfd = openat(w->waldirfd, "log", O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	w->gen = gen;
	return w->logfd < 0 ? -1 : 0;
}

/* Call fn for every complete batch of fd between from and to. Returns what the calls returned,
 * summed, or -1. */
static long replay_range(struct shadow_wal *w, int fd, off_t from, off_t to, shadow_wal_replay_fn fn,
                         void *arg)
{
	if (to <= from)
		return 0;
	size_t len = (size_t)(to - from);
	char *buf = malloc(len + 1);
	if (!buf)
		return -1;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, from + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			free(buf);
			errno = e;
			return -1;
		}
		got += (size_t)n;
	}
	buf[len] = 0;
	long sum = 0;
	char *start = buf, *p = buf;
	unsigned long count = 0;
	while (p < buf + len) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		if (!nl)
			break; /* a torn last line */
		if (nl == p) {
			start = nl + 1; /* a batch starts after an empty line */
			count = 0;
		} else if (p[0] == 'e' && p[1] == ' ') {
			if (strtoul(p + 2, NULL, 10) == count && count > 0) {
				int r = fn(arg, start, (size_t)(p - start));
				if (r > 0)
					sum += r;
			} else {
				log_warn("%s/.wal: skipping a batch that does not add up", w->dir);
			}
			start = nl + 1;
			count = 0;
		} else {
			count++;
		}
		p = nl + 1;
	}
	free(buf);
	return sum;
}

static long replay_file(struct shadow_wal *w, const char *name, shadow_wal_replay_fn fn, void *arg)
{
	int fd = openat(w->waldirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	struct stat st;
	long r = fstat(fd, &st) < 0 ? -1 : replay_range(w, fd, 0, st.st_size, fn, arg);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

static void *ckpt_run(void *arg)
{
	struct shadow_wal *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->job && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->job)
			break;
		pthread_mutex_unlock(&w->mu);
		/* every document of log.old was renamed before log.old was set aside: once the file
		 * system is synced, log.old is not needed any more */
		if (syncfs(w->dirfd) < 0)
			log_warn("unable to sync the file system of %s: %s", w->dir, strerror(errno));
		else if (unlinkat(w->waldirfd, "log.old", 0) < 0 && errno != ENOENT)
			log_warn("unable to remove %s/.wal/log.old: %s", w->dir, strerror(errno));
		flock(w->ckptfd, LOCK_UN);
		pthread_mutex_lock(&w->mu);
		w->job = 0;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct shadow_wal *shadow_wal_open(int dirfd, const char *dir)
{
	struct shadow_wal *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->dirfd = dirfd;
	w->waldirfd = w->lockfd = w->ckptfd = w->logfd = -1;
	w->max = WAL_MAX;
	const char *m = getenv("SHADOW_WAL_MAX");
	if (m && *m) {
		char *end;
		unsigned long v = strtoul(m, &end, 10);
		if (!*end && v > 0)
			w->max = v;
	}
	const char *c = getenv("SHADOW_STORE_CRASH_AFTER_LOG");
	w->crash_after_append = c && *c ? (atol(c) > 1 ? atol(c) : 1) : 0;
	clock_gettime(CLOCK_MONOTONIC, &w->switched);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->dir = strdup(dir);
	if (!w->dir)
		goto fail;
	if (mkdirat(dirfd, ".wal", 0755) < 0 && errno != EEXIST)
		goto fail;
	w->waldirfd = openat(dirfd, ".wal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->waldirfd < 0)
		goto fail;
	w->lockfd = openat(w->waldirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	w->ckptfd = openat(w->waldirfd, "ckpt", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (w->lockfd < 0 || w->ckptfd < 0)
		goto fail;
	return w;
fail:;
	int e = errno;
	shadow_wal_close(w);
	errno = e;
	return NULL;
}

int shadow_wal_recover(struct shadow_wal *w, shadow_wal_replay_fn fn, void *arg)
{
	if (lock_ex(w->lockfd) < 0)
		return -1;
	uint64_t gen, mark;
	read_state(w, &gen, &mark);
	int rc = -1;
	/* log.old is ours to finish only when no checkpoint is running on it */
	int ckpt = flock(w->ckptfd, LOCK_EX | LOCK_NB) == 0;
	long changed = ckpt ? replay_file(w, "log.old", fn, arg) : 0;
	struct stat st;
	if (changed < 0 || open_log(w, gen) < 0 || fstat(w->logfd, &st) < 0)
		goto out;
	long more = replay_range(w, w->logfd, 0, st.st_size, fn, arg);
	if (more < 0)
		goto out;
	changed += more;
	if (changed > 0) {
		/* what a killed process had logged is in the documents now: make them durable, then
		 * the log has nothing left to say */
		if (syncfs(w->dirfd) < 0 || ftruncate(w->logfd, 0) < 0)
			goto out;
		if (ckpt && unlinkat(w->waldirfd, "log.old", 0) < 0 && errno != ENOENT)
			goto out;
		st.st_size = 0;
	}
	write_state(w, gen, (uint64_t)st.st_size, (uint64_t)st.st_size);
	rc = 0;
out:;
	int e = errno;
	if (ckpt)
		flock(w->ckptfd, LOCK_UN);
	flock(w->lockfd, LOCK_UN);
	errno = e;
	return rc;
}

int shadow_wal_begin(struct shadow_wal *w, shadow_wal_replay_fn fn, void *arg)
{
	if (lock_ex(w->lockfd) < 0)
		return -1;
	uint64_t gen, mark;
	read_state(w, &gen, &mark);
	struct stat st;
	if ((w->logfd < 0 || gen != w->gen) && open_log(w, gen) < 0)
		goto fail;
	if (fstat(w->logfd, &st) < 0)
		goto fail;
	/* ours: the log is as this process left it (its documents held back included) */
	int ours = w->wrote && gen == w->last_gen && mark == w->last_mark && (uint64_t)st.st_size == w->last_size;
	if (!ours && (uint64_t)st.st_size != mark) {
		/* a process was killed between logging a batch and applying it, or holds documents
		 * back (shadow_wal_end): they are written here, and its next commit knows */
		if ((uint64_t)st.st_size > mark) {
			log_info("%s: applying the batches that another process logged", w->dir);
			if (replay_range(w, w->logfd, (off_t)mark, st.st_size, fn, arg) < 0)
				goto fail;
		}
		write_state(w, gen, (uint64_t)st.st_size, (uint64_t)st.st_size);
	}
	return ours;
fail:;
	int e = errno;
	flock(w->lockfd, LOCK_UN);
	errno = e;
	return -1;
}

int shadow_wal_append(struct shadow_wal *w, const char *lines, size_t len, size_t nlines)
{
	struct stat st;
	if (fstat(w->logfd, &st) < 0)
		return -1;
	w->batch_at = (uint64_t)st.st_size;
	char end[32];
	int en = snprintf(end, sizeof end, "e %zu\n", nlines);
	/* two newlines: the first ends a line that a killed writer left torn */
	struct iovec iov[3] = {{(void *)"\n\n", 2}, {(void *)lines, len}, {end, (size_t)en}};
	size_t total = 2 + len + (size_t)en, done = 0;
	int i = 0;
	while (done < total) {
		ssize_t n = writev(w->logfd, iov + i, 3 - i);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		done += (size_t)n;
		while (i < 3 && (size_t)n >= iov[i].iov_len) {
			n -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < 3) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	if (fdatasync(w->logfd) < 0)
		goto fail;
	if (w->crash_after_append && --w->crash_after_append == 0)
		raise(SIGKILL);
	return 0;
fail:;
	int e = errno;
	/* never replay a batch that was refused */
	if (ftruncate(w->logfd, st.st_size) < 0)
		log_error("unable to cut back %s/.wal/log: %s", w->dir, strerror(errno));
	errno = e;
	return -1;
}

/* Under the store lock: set the log aside as log.old and start a new one, for the checkpoint
 * thread to sync the file system and remove log.old. */
static void checkpoint(struct shadow_wal *w, uint64_t gen, uint64_t mark)
{
	pthread_mutex_lock(&w->mu);
	int busy = w->job;
	pthread_mutex_unlock(&w->mu);
	if (busy || flock(w->ckptfd, LOCK_EX | LOCK_NB) < 0)
		return; /* one is running, here or in another process */
	struct stat st;
	if (fstatat(w->waldirfd, "log.old", &st, 0) < 0) {
		/* (a log.old here was left by a killed process: sync and remove it as it is) */
		if (mark == 0 || renameat(w->waldirfd, "log", w->waldirfd, "log.old") < 0) {
			flock(w->ckptfd, LOCK_UN);
			return;
		}
		gen++;
		if (open_log(w, gen) < 0 || fsync(w->waldirfd) < 0)
			log_warn("unable to start a new %s/.wal/log: %s", w->dir, strerror(errno));
		write_state(w, gen, 0, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &w->switched);
	pthread_mutex_lock(&w->mu);
	if (!w->started && pthread_create(&w->th, NULL, ckpt_run, w) == 0)
		w->started = 1;
	if (w->started) {
		w->job = 1;
		pthread_cond_signal(&w->cv);
	} else {
		flock(w->ckptfd, LOCK_UN);
	}
	pthread_mutex_unlock(&w->mu);
}

uint64_t shadow_wal_batch_offset(const struct shadow_wal *w)
{
	return w->batch_at;
}

int shadow_wal_full(const struct shadow_wal *w)
{
	struct stat st;
	return w->logfd >= 0 && fstat(w->logfd, &st) == 0 && (size_t)st.st_size >= w->max;
}

void shadow_wal_end(struct shadow_wal *w, int applied, long long held)
{
	struct stat st;
	if (applied && w->logfd >= 0 && fstat(w->logfd, &st) == 0) {
		uint64_t size = (uint64_t)st.st_size;
		write_state(w, w->gen, held >= 0 && (uint64_t)held < size ? (uint64_t)held : size, size);
		/* no checkpoint while documents of this log are held back: it would drop the log */
		if (held < 0 && (size >= w->max || (size > 0 && since(&w->switched) >= WAL_SECONDS)))
			checkpoint(w, w->gen, size);
	}
	flock(w->lockfd, LOCK_UN);
}

void shadow_wal_finish(struct shadow_wal *w)
{
	if (w->logfd < 0 || lock_ex(w->lockfd) < 0)
		return;
	uint64_t gen, mark;
	read_state(w, &gen, &mark);
	struct stat st;
	/* as this process left it, and applied to the end (nothing held back) */
	if (w->wrote && gen == w->gen && gen == w->last_gen && mark == w->last_mark && fstat(w->logfd, &st) == 0 &&
	    (uint64_t)st.st_size == mark && mark == w->last_size && st.st_size > 0) {
		if (syncfs(w->dirfd) < 0 || ftruncate(w->logfd, 0) < 0)
			log_warn("unable to empty %s/.wal/log at exit: %s", w->dir, strerror(errno));
		else
			write_state(w, gen, 0, 0);
	}
	flock(w->lockfd, LOCK_UN);
}

void shadow_wal_close(struct shadow_wal *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->quit = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	if (w->logfd >= 0)
		close(w->logfd);
	if (w->lockfd >= 0)
		close(w->lockfd);
	if (w->ckptfd >= 0)
		close(w->ckptfd);
	if (w->waldirfd >= 0)
		close(w->waldirfd);
	free(w->dir);
	free(w);
}
