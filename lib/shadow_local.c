#define _GNU_SOURCE
#include "shadow_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "json_out.h"
#include "jsonl.h"
#include "log.h"
#include "shadow_doc.h"
#include "shadow_tree.h"
#include "shadow_wal.h"

#define DOC_MAX (1u << 20)
#define PARTIAL_MAX (1u << 20)
#define CACHE_MAX 200000 /* documents remembered between commits */
/* Creating a file is the dear part of writing a document (an inode: ~50-90 us of system time
 * on this machine's ext4 against ~10 us for rewriting a kept-open twin, more where many files
 * were deleted lately), and a write by name (open, write, swap, open both to keep) costs
 * several times a rewrite too. A commit writes documents by name for CREATE_MS at most (and
 * CREATE_MIN at least); those beyond that are held back, in memory and in the log, and written
 * by the next commits or when input pauses, so that 2,000 new things arriving at once (or
 * 2,000 known ones after a restart) do not hold their first commits, and every value behind
 * them, for 100-500 ms. */
#define CREATE_MS 2.0
#define CREATE_MIN 4

/* "thing/shadow" -> the document as a tree (lib/shadow_tree.c), changed in place by commits */
struct centry {
	struct centry *next;
	struct shadow_tdoc *doc;
	size_t hash;
	/* the document's file and its twin, kept open while this process alone writes the store
	 * (-1: not open), with their sizes (-1: unknown) */
	int fd, twin_fd;
	off_t len, twin_len;
	/* held back (not written yet) since the batch at this log offset, -1: written; in the
	 * cache's list of held entries, oldest first */
	long long held;
	struct centry *hnext, *hprev;
	char key[];
};
struct cache {
	struct centry **b;
	size_t nb, n;
	size_t fds, fd_max; /* descriptors held by entries, and the bound */
	struct centry *hhead, *htail; /* the entries held back, oldest first */
	size_t nheld;
	int held_lost; /* a held entry was forgotten: its document is behind the log */
};

static void hold(struct cache *c, struct centry *e, long long at)
{
	if (e->held >= 0)
		return;
	e->held = at;
	e->hnext = NULL;
	e->hprev = c->htail;
	if (c->htail)
		c->htail->hnext = e;
	else
		c->hhead = e;
	c->htail = e;
	c->nheld++;
}

static void unhold(struct cache *c, struct centry *e)
{
	if (e->held < 0)
		return;
	if (e->hprev)
		e->hprev->hnext = e->hnext;
	else
		c->hhead = e->hnext;
	if (e->hnext)
		e->hnext->hprev = e->hprev;
	else
		c->htail = e->hprev;
	e->held = -1;
	e->hnext = e->hprev = NULL;
	c->nheld--;
}

/* An entry about to be freed: a document it held back is now only in the log. */
static void forget_held(struct cache *c, struct centry *e)
{
	if (e->held >= 0) {
		unhold(c, e);
		c->held_lost = 1;
	}
}

static void centry_close(struct cache *c, struct centry *e)
{
	if (e->fd >= 0) {
		close(e->fd);
		c->fds--;
	}
	if (e->twin_fd >= 0) {
		close(e->twin_fd);
		c->fds--;
	}
	e->fd = e->twin_fd = -1;
}

static size_t hash_key(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static struct centry **cache_slot(struct cache *c, const char *key, size_t h)
{
	struct centry **e = &c->b[h & (c->nb - 1)];
	while (*e && ((*e)->hash != h || strcmp((*e)->key, key) != 0))
		e = &(*e)->next;
	return e;
}

static struct centry *cache_entry(struct cache *c, const char *key)
{
	return c->nb ? *cache_slot(c, key, hash_key(key)) : NULL;
}

static struct shadow_tdoc *cache_get(struct cache *c, const char *key)
{
	struct centry *e = cache_entry(c, key);
	return e ? e->doc : NULL;
}

/* Remember doc (taken over, freed on failure). 0 or -1. */
static int cache_put(struct cache *c, const char *key, struct shadow_tdoc *doc)
{
	if (c->n >= c->nb) {
		size_t nb = c->nb ? c->nb * 2 : 1024;
		struct centry **b = calloc(nb, sizeof *b);
		if (!b) {
			shadow_tdoc_free(doc);
			return -1;
		}
		for (size_t i = 0; i < c->nb; i++)
			for (struct centry *e = c->b[i], *next; e; e = next) {
				next = e->next;
				e->next = b[e->hash & (nb - 1)];
				b[e->hash & (nb - 1)] = e;
			}
		free(c->b);
		c->b = b;
		c->nb = nb;
	}
	size_t h = hash_key(key), kl = strlen(key);
	struct centry *e = malloc(sizeof *e + kl + 1);
	if (!e) {
		shadow_tdoc_free(doc);
		return -1;
	}
	memcpy(e->key, key, kl + 1);
	e->hash = h;
	e->doc = doc;
	e->fd = e->twin_fd = -1;
	e->len = e->twin_len = -1;
	e->held = -1;
	e->hnext = e->hprev = NULL;
	struct centry **slot = cache_slot(c, key, h);
	if (*slot) {
		struct centry *old = *slot;
		e->next = old->next;
		forget_held(c, old);
		centry_close(c, old);
		shadow_tdoc_free(old->doc);
		free(old);
		c->n--;
	} else {
		e->next = NULL;
	}
	*slot = e;
	c->n++;
	return 0;
}

static void cache_drop(struct cache *c, const char *key)
{
	if (!c->nb)
		return;
	struct centry **slot = cache_slot(c, key, hash_key(key)), *e = *slot;
	if (!e)
		return;
	*slot = e->next;
	forget_held(c, e);
	centry_close(c, e);
	shadow_tdoc_free(e->doc);
	free(e);
	c->n--;
}

static void cache_clear(struct cache *c)
{
	for (size_t i = 0; i < c->nb; i++)
		for (struct centry *e = c->b[i], *next; e; e = next) {
			next = e->next;
			centry_close(c, e);
			shadow_tdoc_free(e->doc);
			free(e);
		}
	free(c->b);
	*c = (struct cache){.fd_max = c->fd_max, .held_lost = c->held_lost || c->nheld > 0};
}

struct local {
	struct shadow_backend base;
	char *dir;
	int dirfd, jdirfd;
	size_t jmax;
	struct shadow_wal *wal;
	int replay_pending; /* a document of this batch could not be written */
	int put; /* this process committed to the store */
	struct cache cache; /* the stored documents, while nobody else writes */
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
	struct shadow_tdoc *doc; /* the cache's */
	int dirty, failed;
	size_t off, len; /* the new document's text in the batch's log lines */
	char name[256];
	char key[256]; /* "thing/shadow" in the cache */
};

/* Replace one document. Its twin .prev.<name> (the version before) is overwritten in place
 * and swapped with it by one renameat2(RENAME_EXCHANGE): creating an inode per document costs
 * ~15 times as much CPU as that here (ext4, ~270 against ~19 us). Not synced: the log holds the
 * document until the next checkpoint syncs the file system. When the twin must be created
 * (a new document, or its second version), only with creates (counted there): EAGAIN and
 * nothing done without. 0, or an errno with *step "write" or "rename". */
static int write_doc(struct local *l, const char *name, const char *data, size_t len, unsigned *creates,
                     const char **step)
{
	char twin[300];
	snprintf(twin, sizeof twin, ".prev.%s", name);
	*step = "write";
	int fd = openat(l->dirfd, twin, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (!creates)
			return EAGAIN;
		fd = openat(l->dirfd, twin, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	}
	if (creates)
		(*creates)++;
	if (fd < 0)
		return errno;
	int err = 0;
	for (size_t done = 0; done < len && !err;) {
		ssize_t n = pwrite(fd, data + done, len - done, (off_t)done);
		if (n < 0 && errno != EINTR)
			err = errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (!err && ftruncate(fd, (off_t)len) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	if (err)
		return err;
	*step = "rename";
	if (renameat2(l->dirfd, twin, l->dirfd, name, RENAME_EXCHANGE) == 0)
		return 0;
	/* the first version of a document, or a file system that cannot swap */
	if ((errno == ENOENT || errno == EINVAL || errno == ENOSYS) && renameat(l->dirfd, twin, l->dirfd, name) == 0)
		return 0;
	return errno;
}

/* write_doc for a remembered document, with its two files kept open: a pwrite and the swap,
 * against an open, a truncate and a close more (~16 against ~9 us of CPU here). The
 * descriptors follow the names through each swap; they are closed whenever another process
 * may have written the store (the cache is cleared then). */
static int write_doc_cached(struct local *l, struct centry *e, const char *name, const char *data, size_t len,
                            unsigned *creates, const char **step)
{
	struct cache *c = &l->cache;
	if (e->twin_fd < 0) {
		if (!creates)
			return EAGAIN; /* a write by name (and maybe a file to create): not even a look */
		if (e->fd >= 0 || c->fds + 2 > c->fd_max)
			return write_doc(l, name, data, len, creates, step);
		/* first time: the usual way, then keep both files open */
		int err = write_doc(l, name, data, len, creates, step);
		if (err)
			return err;
		char twin[300];
		snprintf(twin, sizeof twin, ".prev.%s", name);
		e->fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC);
		e->twin_fd = e->fd >= 0 ? openat(l->dirfd, twin, O_RDWR | O_CLOEXEC) : -1;
		c->fds += (e->fd >= 0) + (e->twin_fd >= 0);
		if (e->twin_fd < 0) /* no twin yet (a first version): next time, the usual way */
			centry_close(c, e);
		e->len = (off_t)len;
		e->twin_len = -1;
		return 0;
	}
	*step = "write";
	int err = 0;
	for (size_t done = 0; done < len && !err;) {
		ssize_t n = pwrite(e->twin_fd, data + done, len - done, (off_t)done);
		if (n < 0 && errno != EINTR)
			err = errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (!err && (e->twin_len < 0 || e->twin_len > (off_t)len) && ftruncate(e->twin_fd, (off_t)len) < 0)
		err = errno;
	if (!err) {
		char twin[300];
		snprintf(twin, sizeof twin, ".prev.%s", name);
		*step = "rename";
		if (renameat2(l->dirfd, twin, l->dirfd, name, RENAME_EXCHANGE) < 0)
			err = errno;
	}
	if (err) {
		/* a file renamed or removed behind our back: forget the descriptors, write by name */
		centry_close(c, e);
		return write_doc(l, name, data, len, creates, step);
	}
	int fd = e->fd;
	off_t old = e->len;
	e->fd = e->twin_fd;
	e->len = (off_t)len;
	e->twin_fd = fd;
	e->twin_len = old;
	return 0;
}

/* The budget of file creations of one commit (CREATE_MS). */
struct budget {
	struct timespec t0;
	unsigned creates;
	int all; /* no bound: every held document is written */
};

static void budget_start(struct budget *b, int all)
{
	clock_gettime(CLOCK_MONOTONIC, &b->t0);
	b->creates = 0;
	b->all = all;
}

/* The counter to pass to write_doc: NULL once the budget is spent. */
static unsigned *budget_creates(struct budget *b)
{
	if (b->all || b->creates < CREATE_MIN)
		return &b->creates;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	double ms = (double)(t.tv_sec - b->t0.tv_sec) * 1e3 + (double)(t.tv_nsec - b->t0.tv_nsec) / 1e6;
	return ms < CREATE_MS ? &b->creates : NULL;
}

/* Write the documents held back, oldest first, while the budget lasts. Under the store lock.
 * A failure forgets the document (the log has it: the next commit replays it). */
static void write_held(struct local *l, struct budget *b)
{
	struct cache *c = &l->cache;
	struct jbuf text = {0};
	while (c->hhead) {
		struct centry *e = c->hhead;
		unsigned *creates = budget_creates(b);
		if (!creates)
			break;
		char thing[256], name[256];
		const char *slash = strchr(e->key, '/');
		size_t tl = slash ? (size_t)(slash - e->key) : 0;
		const char *step = "write";
		int err = 0;
		text.len = 0;
		text.failed = 0;
		if (!slash || tl >= sizeof thing) {
			err = EINVAL;
		} else {
			memcpy(thing, e->key, tl);
			thing[tl] = 0;
			shadow_tdoc_append(&text, e->doc);
			jbuf_add(&text, "\n", 1);
			if (text.failed)
				err = ENOMEM;
			else if (doc_name(name, sizeof name, thing, slash[1] ? slash + 1 : NULL) < 0)
				err = ENAMETOOLONG;
			else
				err = write_doc_cached(l, e, name, text.p, text.len, creates, &step);
		}
		if (err) {
			log_error("unable to %s %s/%s: %s", step, l->dir, e->key, strerror(err));
			cache_drop(c, e->key);
			l->replay_pending = 1;
			continue;
		}
		unhold(c, e);
	}
	free(text.p);
}

static void fail_group(struct shadow_req *reqs, const struct item *it, struct group *g)
{
	g->failed = 1;
	for (size_t k = 0; k < g->count; k++)
		shadow_req_reject(&reqs[it[g->first + k].idx], 500, "Internal service failure", time(NULL));
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
		rc = fs_write_all(fd, data, len);
		if (close(fd) < 0)
			rc = -1;
	}
	int e = errno;
	close(lk);
	errno = e;
	return rc;
}

static void journal_publish(struct local *l, const struct jbuf *j)
{
	/* the updates are safe in the log; a watcher started later still finds their deltas */
	if (j->failed || journal_append(l, j->p, j->len) < 0)
		log_error("unable to append to %s/.journal/deltas: %s", l->dir, j->failed ? "out of memory" : strerror(errno));
}

/* The log's lines for a batch (shadow-store(5)):
 *   d <thing> <shadow, or . for the classic one> <the new document>
 *   j <a delta line for the journal> */
static int add_doc_line(struct jbuf *b, const char *thing, const char *shadow, const struct shadow_tdoc *doc,
                        size_t *off, size_t *len)
{
	jbuf_add(b, "d ", 2);
	jbuf_add(b, thing, strlen(thing));
	jbuf_add(b, " ", 1);
	jbuf_add(b, *shadow ? shadow : ".", *shadow ? strlen(shadow) : 1);
	jbuf_add(b, " ", 1);
	*off = b->len;
	shadow_tdoc_append(b, doc);
	jbuf_add(b, "\n", 1);
	*len = b->len - *off;
	return b->failed ? -1 : 0;
}

/* A batch of the log, as shadow_wal_replay_fn: write each document the store lacks (an older
 * version, or none) and publish the deltas of the versions it lacked. */
static int replay_batch(void *arg, char *batch, size_t len)
{
	struct local *l = arg;
	jv before = jv_object(); /* "thing/shadow" -> version before this batch, when replaced */
	struct jbuf j = {0};
	int changed = 0;
	for (char *p = batch, *nl; p < batch + len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(batch + len - p));
		if (!nl)
			break;
		*nl = 0;
		if (p[0] == 'd' && p[1] == ' ') {
			char *thing = p + 2, *sp = strchr(thing, ' '), *shp, *body;
			if (!sp || !(body = strchr((shp = sp + 1), ' ')))
				continue;
			*sp = 0;
			*body++ = 0;
			const char *shadow = strcmp(shp, ".") == 0 ? NULL : shp;
			char name[256];
			jv rec = jsonl_parse_object(body, strlen(body));
			jv cur;
			double rv = jl_num(rec, "version", -1), cv = -1;
			jv_free(rec);
			if (doc_name(name, sizeof name, thing, shadow) < 0)
				continue;
			if (shadow_local_read(l->dirfd, thing, shadow, &cur) == 0) {
				cv = jl_num(cur, "version", -1);
				jv_free(cur);
			}
			if (rv <= cv)
				continue;
			const char *step;
			unsigned creates = 0;
			*nl = '\n';
			int err = write_doc(l, name, body, (size_t)(nl + 1 - body), &creates, &step);
			*nl = 0;
			if (err) {
				log_error("unable to %s %s/%s from the log: %s", step, l->dir, name, strerror(err));
				continue;
			}
			changed++;
			before = jv_object_set(before, jv_string_fmt("%s/%s", thing, shadow ? shadow : ""), jv_number(cv));
		} else if (p[0] == 'j' && p[1] == ' ') {
			jv d = jsonl_parse_object(p + 2, strlen(p + 2));
			const char *thing = jv_is_valid(d) ? jl_str(d, "thing") : NULL;
			const char *shadow = jv_is_valid(d) ? jl_str(d, "shadow") : NULL;
			if (thing) {
				jv key = jv_string_fmt("%s/%s", thing, shadow ? shadow : "");
				double cv = jl_num(before, jv_string_value(key), -2);
				jv_free(key);
				if (cv > -2 && jl_num(d, "version", -1) > cv) {
					jbuf_add(&j, p + 2, strlen(p + 2));
					jbuf_add(&j, "\n", 1);
				}
			}
			jv_free(d);
		}
	}
	jv_free(before);
	journal_publish(l, &j);
	free(j.p);
	if (changed)
		log_info("%s: %d document%s restored from the log", l->dir, changed, changed == 1 ? "" : "s");
	return changed;
}

/* Apply, log (one fdatasync), publish the deltas, write the documents. Under the store lock. */
static int commit(struct local *l, struct shadow_req *reqs, size_t n, struct item *it, struct group *gs, size_t ng,
                  time_t now)
{
	int rc = 0;
	/* deltas by input line, so that the journal keeps the input order across things too */
	jv *deltas = calloc(n ? n : 1, sizeof *deltas);
	if (!deltas) {
		for (size_t gi = 0; gi < ng; gi++)
			fail_group(reqs, it, &gs[gi]);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		deltas[i] = jv_invalid();
	for (size_t gi = 0; gi < ng; gi++) {
		struct group *g = &gs[gi];
		const char *thing = it[g->first].thing;
		const char *shadow = *it[g->first].shadow ? it[g->first].shadow : NULL;
		g->dirty = g->failed = 0;
		/* names are checked: [a-zA-Z0-9:_-]{1,128} and {1,64} */
		snprintf(g->key, sizeof g->key, "%s/%s", thing, shadow ? shadow : "");
		if (doc_name(g->name, sizeof g->name, thing, shadow) < 0) {
			fail_group(reqs, it, g);
			rc = -1;
			continue;
		}
		g->doc = cache_get(&l->cache, g->key);
		if (!g->doc) {
			jv doc;
			if (shadow_local_read(l->dirfd, thing, shadow, &doc) < 0) {
				log_error("unable to read shadow %s%s%s: %s", thing, shadow ? "." : "",
				          shadow ? shadow : "", strerror(errno));
				fail_group(reqs, it, g);
				rc = -1;
				continue;
			}
			g->doc = shadow_tdoc_from_jv(doc);
			jv_free(doc);
			/* remembered as read; a commit that fails to write it forgets it again */
			if (!g->doc || cache_put(&l->cache, g->key, g->doc) < 0) {
				log_error("unable to read shadow %s%s%s: out of memory", thing, shadow ? "." : "",
				          shadow ? shadow : "");
				g->doc = NULL;
				fail_group(reqs, it, g);
				rc = -1;
				continue;
			}
		}
		for (size_t k = 0; k < g->count && !g->failed; k++) {
			struct shadow_req *r = &reqs[it[g->first + k].idx];
			jv delta;
			struct shadow_error err;
			struct jbuf line = {0};
			if (shadow_tdoc_apply(g->doc, r->req, r->fast, now, thing, shadow, &line, &delta, &err) < 0) {
				free(line.p);
				if (err.code == 500) {
					/* out of memory, the tree half changed: forget it, refuse the group */
					log_error("unable to update shadow %s: out of memory", g->key);
					cache_drop(&l->cache, g->key);
					g->doc = NULL;
					fail_group(reqs, it, g);
					break;
				}
				shadow_req_reject(r, err.code, err.message, now);
				continue;
			}
			g->dirty = 1;
			shadow_req_accept_text(r, &line);
			if (jv_is_valid(delta))
				deltas[it[g->first + k].idx] = shadow_tag(delta, thing, shadow, NULL);
			else
				jv_free(delta);
		}
	}
	struct jbuf wal = {0}, jour = {0};
	size_t lines = 0;
	for (size_t gi = 0; gi < ng; gi++) {
		struct group *g = &gs[gi];
		if (g->dirty && !g->failed) {
			add_doc_line(&wal, it[g->first].thing, it[g->first].shadow, g->doc, &g->off, &g->len);
			lines++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!jv_is_valid(deltas[i]))
			continue;
		if (shadow_req_accepted(&reqs[i])) {
			size_t at = jour.len;
			json_out_append(&jour, deltas[i]);
			jbuf_add(&jour, "\n", 1);
			jbuf_add(&wal, "j ", 2);
			jbuf_add(&wal, jour.p + at, jour.len - at);
			lines++;
		}
		jv_free(deltas[i]);
	}
	free(deltas);
	int logged = 0;
	if (wal.failed || jour.failed) {
		log_error("unable to log a batch in %s: out of memory", l->dir);
	} else if (lines > 0 && shadow_wal_append(l->wal, wal.p, wal.len, lines) < 0) {
		log_error("unable to log a batch in %s/.wal/log: %s", l->dir, strerror(errno));
	} else {
		logged = 1;
	}
	if (!logged) {
		for (size_t gi = 0; gi < ng; gi++)
			if (gs[gi].dirty && !gs[gi].failed) {
				/* the tree holds the refused updates: read the document again next time */
				cache_drop(&l->cache, gs[gi].key);
				fail_group(reqs, it, &gs[gi]);
			}
		rc = -1;
	} else {
		/* durable now: publish, then bring the documents up to date (a watcher that hears of a
		 * version before its document is renamed reads the journal, not the document) */
		journal_publish(l, &jour);
		struct budget b;
		budget_start(&b, shadow_wal_full(l->wal));
		long long at = (long long)shadow_wal_batch_offset(l->wal);
		for (size_t gi = 0; gi < ng; gi++) {
			struct group *g = &gs[gi];
			if (!g->dirty || g->failed)
				continue;
			const char *step;
			struct centry *e = cache_entry(&l->cache, g->key);
			int err = e ? write_doc_cached(l, e, g->name, wal.p + g->off, g->len, budget_creates(&b), &step)
			            : write_doc(l, g->name, wal.p + g->off, g->len, &b.creates, &step);
			if (err == EAGAIN && e) {
				/* a file to create, past the budget: later (the log has the document) */
				hold(&l->cache, e, at);
				continue;
			}
			if (e && !err)
				unhold(&l->cache, e);
			if (err) {
				cache_drop(&l->cache, g->key);
				/* the update stands (it is in the log); the next commit replays the batch */
				log_error("unable to %s %s/%s: %s", step, l->dir, g->name, strerror(err));
				l->replay_pending = 1;
			}
		}
		write_held(l, &b);
	}
	free(wal.p);
	free(jour.p);
	return rc;
}

/* Release the store lock after a commit or a flush, telling the log what is held back. */
static void end_commit(struct local *l)
{
	struct cache *c = &l->cache;
	shadow_wal_end(l->wal, !l->replay_pending && !c->held_lost, c->hhead ? c->hhead->held : -1);
	l->replay_pending = 0;
	c->held_lost = 0;
}

/* After shadow_wal_begin: forget what another process may have changed (it replayed our held
 * documents first), or, past the bound, what we remember. */
static void begin_commit(struct local *l, int ours)
{
	struct cache *c = &l->cache;
	if (!ours) {
		cache_clear(c);
		c->held_lost = 0;
	} else if (c->n > CACHE_MAX) {
		struct budget b;
		budget_start(&b, 1);
		write_held(l, &b);
		cache_clear(c);
	}
}

static int local_put(struct shadow_backend *b, struct shadow_req *reqs, size_t n)
{
	struct local *l = (struct local *)b;
	struct item *it = calloc(n ? n : 1, sizeof *it);
	struct group *gs = calloc(n ? n : 1, sizeof *gs);
	int ours = it && gs ? shadow_wal_begin(l->wal, replay_batch, l) : -1;
	if (ours < 0) {
		if (it && gs)
			log_error("unable to lock %s/.wal/lock: %s", l->dir, strerror(errno));
		free(it);
		free(gs);
		for (size_t i = 0; i < n; i++)
			if (!jv_is_valid(reqs[i].result))
				shadow_req_reject(&reqs[i], 500, "Internal service failure", time(NULL));
		return -1;
	}
	/* another process wrote the store: what this one remembers may be stale */
	begin_commit(l, ours);
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
			gs[ng].doc = NULL;
			ng++;
		}
		gs[ng - 1].count++;
	}
	int rc = commit(l, reqs, n, it, gs, ng, time(NULL));
	end_commit(l);
	l->put = 1;
	free(it);
	free(gs);
	return rc;
}

/* Write held documents: a budget's worth, or all. How many are still held, or -1. */
static int local_flush(struct shadow_backend *b, int all)
{
	struct local *l = (struct local *)b;
	if (!l->cache.hhead)
		return 0;
	int ours = shadow_wal_begin(l->wal, replay_batch, l);
	if (ours < 0) {
		log_error("unable to lock %s/.wal/lock: %s", l->dir, strerror(errno));
		return -1;
	}
	begin_commit(l, ours);
	struct budget bu;
	budget_start(&bu, all);
	write_held(l, &bu);
	end_commit(l);
	return (int)(l->cache.nheld < INT_MAX ? l->cache.nheld : INT_MAX);
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
	if (l->wal && l->cache.hhead && local_flush(b, 1) != 0)
		log_error("%s: documents left behind the log (the next open replays them)", l->dir);
	else if (l->wal && l->put)
		shadow_wal_finish(l->wal); /* a restart then reads no log */
	shadow_wal_close(l->wal);
	cache_clear(&l->cache);
	close(l->dirfd);
	close(l->jdirfd);
	free(l->partial);
	free(l->dir);
	free(l);
}

static const struct shadow_backend_ops local_ops = {
	.put = local_put,
	.flush = local_flush,
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
	l->dirfd = l->jdirfd = l->inofd = l->jfd = -1;
	l->dir = strdup(dir);
	if (!l->dir)
		goto fail;
	struct rlimit rl;
	/* descriptors for the documents' files (write_doc_cached), leaving room for the rest */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 512)
		l->cache.fd_max = rl.rlim_cur - 256 < 2 * CACHE_MAX ? (size_t)rl.rlim_cur - 256 : 2 * CACHE_MAX;
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY)
		l->cache.fd_max = 2 * CACHE_MAX;
	l->jmax = SHADOW_JOURNAL_MAX;
	const char *jm = getenv("SHADOW_JOURNAL_MAX");
	if (jm && *jm) {
		char *end;
		unsigned long v = strtoul(jm, &end, 10);
		if (!*end && v > 0)
			l->jmax = v;
	}
	if (snprintf(path, sizeof path, "%s/.journal", dir) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if (fs_mkdir_p(path) < 0)
		goto fail;
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	l->jdirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0 || l->jdirfd < 0)
		goto fail;
	sweep_tmp(l);
	/* a process killed after logging a batch left documents behind the log: bring them up to
	 * date before anyone reads them */
	if (!(l->wal = shadow_wal_open(l->dirfd, dir)) || shadow_wal_recover(l->wal, replay_batch, l) < 0)
		goto fail;
	return &l->base;
fail:;
	int e = errno;
	if (l->dirfd >= 0)
		close(l->dirfd);
	if (l->jdirfd >= 0)
		close(l->jdirfd);
	shadow_wal_close(l->wal);
	free(l->dir);
	free(l);
	errno = e;
	return NULL;
}
