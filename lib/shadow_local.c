#define _GNU_SOURCE
#include "shadow_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "jsonl.h"
#include "log.h"
#include "shadow_doc.h"

#define DOC_MAX (1u << 20)
#define CHUNK_THINGS 1024 /* things locked at once: bounds open descriptors */
#define WRITERS 16        /* threads writing documents at once */
#define PARTIAL_MAX (1u << 20)

struct local {
	struct shadow_backend base;
	char *dir;
	int dirfd, lockfd, jdirfd;
	size_t jmax;
	/* watching */
	const struct shadow_select *sel;
	int inofd, jfd;
	ino_t jino;
	off_t jpos;
	char *partial;
	size_t plen, pcap;
};

static int doc_name(char *buf, size_t size, const char *thing, const char *shadow)
{
	int n = shadow ? snprintf(buf, size, "%s.%s.json", thing, shadow)
	               : snprintf(buf, size, "%s.json", thing);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

int shadow_local_read(int dirfd, const char *thing, const char *shadow, jv *doc)
{
	char name[256];
	if (doc_name(name, sizeof name, thing, shadow) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*doc = jv_null();
			return 0;
		}
		return -1;
	}
	size_t cap = 8192, len = 0;
	char *data = malloc(cap);
	for (;;) {
		if (!data)
			break;
		if (len == cap) {
			char *nd = cap < DOC_MAX ? realloc(data, cap * 2) : NULL;
			if (!nd) {
				free(data);
				data = NULL;
				errno = cap < DOC_MAX ? ENOMEM : EFBIG;
				break;
			}
			data = nd;
			cap *= 2;
		}
		ssize_t n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(data);
			data = NULL;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	int e = errno;
	close(fd);
	if (!data) {
		errno = e;
		return -1;
	}
	jv v = jsonl_parse_object(data, len);
	free(data);
	if (!jv_is_valid(v)) {
		jv_free(v);
		errno = EINVAL;
		return -1;
	}
	*doc = v;
	return 0;
}

/* ---- updates ---- */

struct item {
	size_t idx;
	const char *thing, *shadow; /* shadow "" for the classic one */
};

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->thing, y->thing);
	if (!c)
		c = strcmp(x->shadow, y->shadow);
	if (!c)
		c = x->idx < y->idx ? -1 : x->idx > y->idx;
	return c;
}

struct group {
	size_t first, count; /* range in the sorted items */
	jv doc;
	int dirty, failed;
	char *data; /* the new document, while it is being written */
	size_t len;
	int err;          /* errno of the failed step */
	const char *step; /* "write", "sync", "rename" */
	char name[256], tmp[300];
};

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Replace one document: temporary file, fdatasync, rename. Plain system calls on plain
 * memory, so that several run at once. */
static void write_doc(struct local *l, struct group *g)
{
	int fd = openat(l->dirfd, g->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g->step = "write";
	if (fd < 0) {
		g->err = errno;
		return;
	}
	if (write_all(fd, g->data, g->len) < 0)
		g->err = errno;
	else if ((g->step = "sync", fdatasync(fd) < 0))
		g->err = errno;
	if (close(fd) < 0 && !g->err) {
		g->step = "write";
		g->err = errno;
	}
	if (!g->err && (g->step = "rename", renameat(l->dirfd, g->tmp, l->dirfd, g->name) < 0))
		g->err = errno;
	if (g->err)
		unlinkat(l->dirfd, g->tmp, 0);
}

struct writer {
	pthread_t t;
	struct local *l;
	struct group *gs;
	size_t n;
	atomic_size_t *next;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	for (;;) {
		size_t i = atomic_fetch_add(w->next, 1);
		if (i >= w->n)
			return NULL;
		if (w->gs[i].data)
			write_doc(w->l, &w->gs[i]);
	}
}

/* Write the nw documents of gs[0..n) that have data. Each fdatasync(2) waits for a file system
 * journal commit; run from several threads they share commits instead of queueing for one
 * each, which is what makes a group of hundreds of documents cost a few commits. */
static void write_docs(struct local *l, struct group *gs, size_t n, size_t nw)
{
	atomic_size_t next = 0;
	struct writer w[WRITERS];
	size_t nt = nw < 4 ? 0 : nw / 4 < WRITERS ? nw / 4 : WRITERS;
	size_t started = 0;
	for (size_t k = 0; k < nt; k++) {
		w[k] = (struct writer){.l = l, .gs = gs, .n = n, .next = &next};
		if (pthread_create(&w[k].t, NULL, writer_run, &w[k]) != 0)
			break;
		started++;
	}
	struct writer self = {.l = l, .gs = gs, .n = n, .next = &next};
	writer_run(&self);
	for (size_t k = 0; k < started; k++)
		pthread_join(w[k].t, NULL);
}

static void fail_group(struct shadow_req *reqs, const struct item *it, struct group *g)
{
	g->failed = 1;
	for (size_t k = 0; k < g->count; k++)
		shadow_req_reject(&reqs[it[g->first + k].idx], 500, "Internal service failure", time(NULL));
}

static int reqs_failed(const struct shadow_req *reqs, size_t i)
{
	jv code = jl_get(reqs[i].result, "code");
	int failed = jv_get_kind(code) == JV_KIND_NUMBER && jv_number_value(code) == 500;
	jv_free(code);
	return failed;
}

/* Append the batch's deltas to the journal, rotating it when it has grown past the bound. */
static int journal_append(struct local *l, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	int lk = openat(l->jdirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lk < 0)
		return -1;
	if (flock(lk, LOCK_EX) < 0) {
		close(lk);
		return -1;
	}
	int rc = -1;
	int fd = openat(l->jdirfd, "deltas", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size + len > l->jmax &&
	    st.st_size > 0) {
		close(fd);
		fd = -1;
		if (renameat(l->jdirfd, "deltas", l->jdirfd, "deltas.1") == 0)
			fd = openat(l->jdirfd, "deltas", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	}
	if (fd >= 0) {
		rc = write_all(fd, data, len);
		if (close(fd) < 0)
			rc = -1;
	}
	int e = errno;
	close(lk);
	errno = e;
	return rc;
}

static int lock_thing(struct local *l, const char *thing)
{
	int fd = openat(l->lockfd, thing, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
	}
	return fd;
}

/* Process groups [g0, g1) whose things are locked: apply, write, sync, rename, journal. */
static int commit_chunk(struct local *l, struct shadow_req *reqs, size_t n, struct item *it,
                        struct group *gs, size_t g0, size_t g1, time_t now)
{
	int rc = 0;
	/* deltas by input line, so that the journal keeps the input order across things too */
	jv deltas = jv_array_set(jv_array(), (int)n - 1, jv_null());
	for (size_t gi = g0; gi < g1; gi++) {
		struct group *g = &gs[gi];
		const char *thing = it[g->first].thing;
		const char *shadow = *it[g->first].shadow ? it[g->first].shadow : NULL;
		g->data = NULL;
		g->dirty = g->failed = 0;
		if (doc_name(g->name, sizeof g->name, thing, shadow) < 0 ||
		    shadow_local_read(l->dirfd, thing, shadow, &g->doc) < 0) {
			log_error("unable to read shadow %s%s%s: %s", thing, shadow ? "." : "",
			          shadow ? shadow : "", strerror(errno));
			g->doc = jv_null();
			fail_group(reqs, it, g);
			rc = -1;
			continue;
		}
		for (size_t k = 0; k < g->count; k++) {
			struct shadow_req *r = &reqs[it[g->first + k].idx];
			jv acc, delta;
			struct shadow_error err;
			if (shadow_apply(&g->doc, r->req, now, &acc, &delta, &err) < 0) {
				shadow_req_reject(r, err.code, err.message, now);
				continue;
			}
			g->dirty = 1;
			shadow_req_accept(r, acc);
			if (jv_is_valid(delta))
				deltas = jv_array_set(deltas, (int)it[g->first + k].idx,
				                      jv_dump_string(shadow_tag(delta, thing, shadow, NULL), 0));
		}
	}
	/* write every changed document beside its old self, make it durable, rename it over */
	size_t nw = 0;
	for (size_t gi = g0; gi < g1; gi++) {
		struct group *g = &gs[gi];
		if (!g->dirty || g->failed)
			continue;
		snprintf(g->tmp, sizeof g->tmp, ".tmp.%s.%ld", g->name, (long)getpid());
		jv s = jv_dump_string(jv_copy(g->doc), 0);
		s = jv_string_append_str(s, "\n");
		g->len = strlen(jv_string_value(s));
		g->data = malloc(g->len);
		if (!g->data) {
			fail_group(reqs, it, g);
			rc = -1;
		} else {
			memcpy(g->data, jv_string_value(s), g->len);
			g->err = 0;
			g->step = NULL;
			nw++;
		}
		jv_free(s);
	}
	if (nw > 0)
		write_docs(l, gs + g0, g1 - g0, nw);
	for (size_t gi = g0; gi < g1; gi++) {
		struct group *g = &gs[gi];
		if (!g->data)
			continue;
		free(g->data);
		g->data = NULL;
		if (g->err) {
			log_error("unable to %s %s/%s: %s", g->step, l->dir, g->tmp, strerror(g->err));
			fail_group(reqs, it, g);
			rc = -1;
		}
	}
	jv journal = jv_string("");
	jv_array_foreach(deltas, i, line) {
		if (jv_get_kind(line) == JV_KIND_STRING && !reqs_failed(reqs, (size_t)i)) {
			journal = jv_string_append_str(journal, jv_string_value(line));
			journal = jv_string_append_str(journal, "\n");
		}
		jv_free(line);
	}
	jv_free(deltas);
	if (fsync(l->dirfd) < 0) {
		log_error("unable to sync %s: %s", l->dir, strerror(errno));
		for (size_t gi = g0; gi < g1; gi++)
			if (gs[gi].dirty && !gs[gi].failed)
				fail_group(reqs, it, &gs[gi]);
		rc = -1;
	} else if (journal_append(l, jv_string_value(journal), strlen(jv_string_value(journal))) < 0) {
		/* the documents are safe; a watcher started later still finds their deltas */
		log_error("unable to append to %s/.journal/deltas: %s", l->dir, strerror(errno));
	}
	jv_free(journal);
	for (size_t gi = g0; gi < g1; gi++) {
		jv_free(gs[gi].doc);
		gs[gi].doc = jv_null();
	}
	return rc;
}

static int local_put(struct shadow_backend *b, struct shadow_req *reqs, size_t n)
{
	struct local *l = (struct local *)b;
	struct item *it = calloc(n ? n : 1, sizeof *it);
	struct group *gs = calloc(n ? n : 1, sizeof *gs);
	int *locks = calloc(CHUNK_THINGS, sizeof *locks);
	if (!it || !gs || !locks) {
		free(it);
		free(gs);
		free(locks);
		for (size_t i = 0; i < n; i++)
			if (!jv_is_valid(reqs[i].result))
				shadow_req_reject(&reqs[i], 500, "Internal service failure", time(NULL));
		return -1;
	}
	size_t ni = 0;
	for (size_t i = 0; i < n; i++) {
		if (jv_is_valid(reqs[i].result))
			continue;
		const char *sh = shadow_req_shadow(&reqs[i]);
		it[ni++] = (struct item){i, shadow_req_thing(&reqs[i]), sh ? sh : ""};
	}
	qsort(it, ni, sizeof *it, item_cmp);
	size_t ng = 0;
	for (size_t i = 0; i < ni; i++) {
		if (i == 0 || strcmp(it[i].thing, it[i - 1].thing) || strcmp(it[i].shadow, it[i - 1].shadow)) {
			gs[ng].first = i;
			gs[ng].count = 0;
			gs[ng].doc = jv_null();
			ng++;
		}
		gs[ng - 1].count++;
	}
	time_t now = time(NULL);
	int rc = 0;
	/* lock things in name order, so that two processes never wait for each other in a cycle */
	for (size_t g0 = 0; g0 < ng;) {
		size_t g1 = g0, nl = 0;
		int lockfail = 0;
		while (g1 < ng) {
			const char *thing = it[gs[g1].first].thing;
			if (g1 == g0 || strcmp(thing, it[gs[g1 - 1].first].thing) != 0) {
				if (nl == CHUNK_THINGS)
					break;
				locks[nl] = lock_thing(l, thing);
				if (locks[nl] < 0) {
					log_error("unable to lock %s/.lock/%s: %s", l->dir, thing, strerror(errno));
					lockfail = 1;
					break;
				}
				nl++;
			}
			g1++;
		}
		if (lockfail) {
			for (size_t gi = g0; gi < ng; gi++)
				fail_group(reqs, it, &gs[gi]);
			rc = -1;
		} else if (commit_chunk(l, reqs, n, it, gs, g0, g1, now) < 0) {
			rc = -1;
		}
		for (size_t k = 0; k < nl; k++)
			close(locks[k]);
		if (lockfail)
			break;
		g0 = g1;
	}
	free(it);
	free(gs);
	free(locks);
	return rc;
}

/* ---- watching ---- */

static void emit_doc_delta(struct local *l, const char *fname, shadow_delta_fn emit, void *arg)
{
	size_t n = strlen(fname);
	if (fname[0] == '.' || n <= 5 || strcmp(fname + n - 5, ".json") != 0)
		return;
	char base[256];
	if (n - 5 >= sizeof base)
		return;
	memcpy(base, fname, n - 5);
	base[n - 5] = 0;
	char *dot = strchr(base, '.');
	if (dot)
		*dot = 0;
	const char *thing = base, *shadow = dot ? dot + 1 : NULL;
	if (!shadow_thing_name_ok(thing) || (shadow && !shadow_shadow_name_ok(shadow)))
		return;
	if (!shadow_select_match(l->sel, thing))
		return;
	jv doc;
	if (shadow_local_read(l->dirfd, thing, shadow, &doc) < 0) {
		log_warn("unable to read %s/%s: %s", l->dir, fname, strerror(errno));
		return;
	}
	jv d = shadow_delta(doc, time(NULL));
	jv_free(doc);
	if (jv_is_valid(d))
		emit(arg, shadow_tag(d, thing, shadow, NULL));
	else
		jv_free(d);
}

/* Emit the current delta of every selected shadow in the store. */
static int scan(struct local *l, shadow_delta_fn emit, void *arg)
{
	int fd = dup(l->dirfd);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d)))
		emit_doc_delta(l, de->d_name, emit, arg);
	closedir(d);
	return 0;
}

static void journal_line(struct local *l, const char *line, size_t len, shadow_delta_fn emit, void *arg)
{
	jv v = jsonl_parse_object(line, len);
	if (!jv_is_valid(v)) {
		jv_free(v);
		log_warn("%s/.journal/deltas: skipping an unreadable line", l->dir);
		return;
	}
	const char *thing = jl_str(v, "thing");
	if (thing && shadow_select_match(l->sel, thing))
		emit(arg, v);
	else
		jv_free(v);
}

/* Read the journal from where we stopped to its end, emitting every complete line. */
static int journal_read(struct local *l, shadow_delta_fn emit, void *arg)
{
	char buf[65536];
	for (;;) {
		ssize_t n = pread(l->jfd, buf, sizeof buf, l->jpos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		l->jpos += n;
		const char *p = buf, *end = buf + n;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (l->plen + take > PARTIAL_MAX) {
				log_warn("%s/.journal/deltas: dropping an overlong line", l->dir);
				l->plen = 0;
			} else {
				if (l->plen + take + 1 > l->pcap) {
					size_t cap = (l->plen + take + 1) * 2;
					char *np = realloc(l->partial, cap);
					if (!np)
						return -1;
					l->partial = np;
					l->pcap = cap;
				}
				memcpy(l->partial + l->plen, p, take);
				l->plen += take;
			}
			if (!nl)
				break;
			l->partial[l->plen] = 0;
			if (l->plen > 0)
				journal_line(l, l->partial, l->plen, emit, arg);
			l->plen = 0;
			p = nl + 1;
		}
	}
}

static int journal_open(struct local *l)
{
	l->jfd = openat(l->jdirfd, "deltas", O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
	struct stat st;
	if (l->jfd < 0 || fstat(l->jfd, &st) < 0)
		return -1;
	l->jino = st.st_ino;
	l->jpos = 0;
	l->plen = 0;
	return 0;
}

/* Follow a rotation: finish the old journal, then read the new one from its start. If more
 * than one rotation went by, deltas may have been missed: rescan the documents. */
static int journal_follow(struct local *l, shadow_delta_fn emit, void *arg)
{
	for (;;) {
		struct stat st, old;
		if (fstatat(l->jdirfd, "deltas", &st, 0) == 0 && st.st_ino == l->jino)
			return 0;
		if (journal_read(l, emit, arg) < 0)
			return -1;
		int gap = !(fstatat(l->jdirfd, "deltas.1", &old, 0) == 0 && old.st_ino == l->jino);
		close(l->jfd);
		if (journal_open(l) < 0)
			return -1;
		if (gap) {
			log_info("journal rotated more than once since last read; rescanning %s", l->dir);
			if (scan(l, emit, arg) < 0)
				return -1;
		}
		if (journal_read(l, emit, arg) < 0)
			return -1;
	}
}

static int local_watch_start(struct shadow_backend *b, const struct shadow_select *sel, int initial,
                             shadow_delta_fn emit, void *arg)
{
	struct local *l = (struct local *)b;
	l->sel = sel;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/.journal", l->dir);
	l->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (l->inofd < 0 || inotify_add_watch(l->inofd, path, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
		return -1;
	if (journal_open(l) < 0)
		return -1;
	/* start at the journal's end: what came before is in the documents (--initial) */
	l->jpos = lseek(l->jfd, 0, SEEK_END);
	if (l->jpos < 0)
		return -1;
	if (initial && scan(l, emit, arg) < 0)
		return -1;
	if (journal_read(l, emit, arg) < 0)
		return -1;
	return journal_follow(l, emit, arg);
}

static int local_watch_fd(struct shadow_backend *b)
{
	return ((struct local *)b)->inofd;
}

static int local_watch_drain(struct shadow_backend *b, shadow_delta_fn emit, void *arg)
{
	struct local *l = (struct local *)b;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(l->inofd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
	}
	/* the events only say "look": the journal itself says what happened, whatever was coalesced */
	if (journal_read(l, emit, arg) < 0)
		return -1;
	return journal_follow(l, emit, arg);
}

static void local_close(struct shadow_backend *b)
{
	struct local *l = (struct local *)b;
	if (!l)
		return;
	if (l->inofd >= 0)
		close(l->inofd);
	if (l->jfd >= 0)
		close(l->jfd);
	close(l->dirfd);
	close(l->lockfd);
	close(l->jdirfd);
	free(l->partial);
	free(l->dir);
	free(l);
}

static const struct shadow_backend_ops local_ops = {
	.put = local_put,
	.watch_start = local_watch_start,
	.watch_fd = local_watch_fd,
	.watch_drain = local_watch_drain,
	.close = local_close,
};

/* Remove temporary files that a killed shadow-put left behind (its pid is gone). */
static void sweep_tmp(struct local *l)
{
	int fd = dup(l->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, ".tmp.", 5) != 0)
			continue;
		const char *dot = strrchr(de->d_name, '.');
		long pid = strtol(dot + 1, NULL, 10);
		if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			unlinkat(l->dirfd, de->d_name, 0);
	}
	closedir(d);
}

struct shadow_backend *shadow_local_open(const char *dir)
{
	char path[PATH_MAX];
	struct local *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->base.ops = &local_ops;
	l->dirfd = l->lockfd = l->jdirfd = l->inofd = l->jfd = -1;
	l->dir = strdup(dir);
	if (!l->dir)
		goto fail;
	l->jmax = SHADOW_JOURNAL_MAX;
	const char *jm = getenv("SHADOW_JOURNAL_MAX");
	if (jm && *jm) {
		char *end;
		unsigned long v = strtoul(jm, &end, 10);
		if (!*end && v > 0)
			l->jmax = v;
	}
	if (snprintf(path, sizeof path, "%s/.lock", dir) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if (fs_mkdir_p(path) < 0)
		goto fail;
	snprintf(path, sizeof path, "%s/.journal", dir);
	if (fs_mkdir_p(path) < 0)
		goto fail;
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	l->jdirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof path, "%s/.lock", dir);
	l->lockfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0 || l->jdirfd < 0 || l->lockfd < 0)
		goto fail;
	/* one lock and one temporary file per thing of a chunk may be open at once */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 4096) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sweep_tmp(l);
	return &l->base;
fail:;
	int e = errno;
	if (l->dirfd >= 0)
		close(l->dirfd);
	if (l->jdirfd >= 0)
		close(l->jdirfd);
	if (l->lockfd >= 0)
		close(l->lockfd);
	free(l->dir);
	free(l);
	errno = e;
	return NULL;
}
