#define _GNU_SOURCE /* sync_file_range */
#include "js_state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "hex.h"
#include "js_devices.h"
#include "js_stats.h"
#include "jsonl.h"
#include "log.h"

enum {
	RECENT = 32,  /* DevNonces remembered for devices older than 1.0.4 */
	SESSIONS = 4, /* sessions remembered per device for AppSKeyReq */
};
#define LOG_SIZE ((off_t)32 << 20) /* preallocated, two halves (see log_take); LJS_LOG_SIZE */
#define LOG_MIN ((off_t)64 << 10)
#define BLOCK 4096
#define SNAP_CHUNK 512 /* table slots serialized per hold of the table's lock */
#define COMMITTERS 3  /* threads that write batches and then wake their waiters */
#define WRITING_MAX 2 /* batches written at once (see committer) */
#define HEDGE_US 1000 /* ... the second one only once the first took this long */

/* a caller waiting for its record (number seq) to be durable */
struct waiter {
	uint64_t seq, queued_us;
	js_state_done_fn done;
	void *arg;
};

struct session {
	uint8_t sid[16];
	char *env;
};

struct dstate {
	uint64_t dev_eui;
	bool used;
	bool has_jn;
	uint32_t join_nonce;
	int32_t last_dn; /* greatest DevNonce seen, -1 for none */
	uint16_t recent[RECENT];
	uint8_t n_recent, recent_pos;
	struct session sess[SESSIONS];
	uint8_t sess_pos;
};

struct js_state {
	pthread_mutex_t mu; /* the table */
	struct dstate *tab;
	size_t cap, n;

	char *dir, *log_path, *snap_path;
	int log_fd, lock_fd;
	/* The log is two halves used in turn. Records are stamped with the generation gen of their
	 * half; moving to the other half starts the next generation, and the snapshot of the table
	 * as of then (generation gen: every record older than gen folded in) is written in the
	 * background by the snapshot thread while the joins go on. The other half (records of gen - 1)
	 * may be overwritten once that snapshot is on disk (snap_done >= gen): the log only waits for
	 * a snapshot when a whole half filled up meanwhile. */
	pthread_mutex_t omu; /* everything below */
	pthread_cond_t snap_cv;
	off_t log_size, log_off; /* log_off: where the next batch starts */
	int half;
	uint32_t gen, snap_want, snap_done;
	bool snap_failed, snap_stop;
	size_t snap_len; /* the last snapshot's size: the next one's buffer is allocated once */
	pthread_t snap_thread;
	bool snap_running;

	/* group commit: the records pending (not taken by a writer yet) and their waiters; a batch
	 * takes both, and its waiters learn their fate when its own write ends */
	pthread_mutex_t cmu;
	pthread_cond_t work;
	char *pend;
	size_t pend_len, pend_cap;
	uint64_t pend_seq, taken_seq;
	struct waiter *wq; /* ring of the pending records' waiters, in record order */
	size_t wq_head, wq_len, wq_cap;
	bool broken, stop; /* broken: a write failed, the log's content is unknown: no more joins */
	pthread_t threads[COMMITTERS];
	int n_threads;
	/* batches being written now, at most writing_max, and when the last one started: while one
	 * is written the next grows (one write for many records) unless the write takes longer than
	 * hedge_us; then the next batch goes out beside it rather than wait behind a slow write */
	unsigned writing, writing_max;
	uint64_t hedge_us, write_started;
	struct js_stats *stats;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Rehash the table into ncap slots (a power of two); called with st->mu held. */
static void grow(struct js_state *st, size_t ncap)
{
	struct dstate *nt = calloc(ncap, sizeof *nt);
	if (!nt)
		die(EXIT_TEMPORARY, "out of memory");
	for (size_t i = 0; i < st->cap; i++) {
		if (!st->tab[i].used)
			continue;
		size_t j = mix(st->tab[i].dev_eui) & (ncap - 1);
		while (nt[j].used)
			j = (j + 1) & (ncap - 1);
		nt[j] = st->tab[i];
	}
	free(st->tab);
	st->tab = nt;
	st->cap = ncap;
}

/* The slots for n devices at most 3/4 full. */
static size_t cap_for(size_t cap, size_t n)
{
	while (n * 4 > cap * 3)
		cap = cap ? cap * 2 : 1024;
	return cap;
}

static struct dstate *find(struct js_state *st, uint64_t eui, bool create)
{
	if (create && (st->n + 1) * 4 > st->cap * 3)
		grow(st, cap_for(st->cap, st->n + 1));
	if (st->cap == 0)
		return NULL;
	size_t j = mix(eui) & (st->cap - 1);
	while (st->tab[j].used) {
		if (st->tab[j].dev_eui == eui)
			return &st->tab[j];
		j = (j + 1) & (st->cap - 1);
	}
	if (!create)
		return NULL;
	struct dstate *d = &st->tab[j];
	memset(d, 0, sizeof *d);
	d->used = true;
	d->dev_eui = eui;
	d->last_dn = -1;
	st->n++;
	return d;
}

static bool dn_seen(const struct dstate *d, uint16_t dn)
{
	for (int i = 0; i < d->n_recent; i++)
		if (d->recent[i] == dn)
			return true;
	return false;
}

static void dn_add(struct dstate *d, uint16_t dn)
{
	if ((int32_t)dn > d->last_dn)
		d->last_dn = dn;
	if (dn_seen(d, dn))
		return;
	d->recent[d->recent_pos] = dn;
	d->recent_pos = (uint8_t)((d->recent_pos + 1) % RECENT);
	if (d->n_recent < RECENT)
		d->n_recent++;
}

static void jn_add(struct dstate *d, uint32_t jn)
{
	if (!d->has_jn || jn > d->join_nonce)
		d->join_nonce = jn;
	d->has_jn = true;
}

static void sess_add(struct dstate *d, const uint8_t sid[16], const char *env)
{
	for (int i = 0; i < SESSIONS; i++)
		if (d->sess[i].env && memcmp(d->sess[i].sid, sid, 16) == 0)
			return;
	struct session *s = &d->sess[d->sess_pos];
	d->sess_pos = (uint8_t)((d->sess_pos + 1) % SESSIONS);
	free(s->env);
	memcpy(s->sid, sid, 16);
	s->env = strdup(env);
}

static void apply_session(struct dstate *ds, jv r)
{
	uint8_t sid[16];
	const char *s = jl_str(r, "s");
	jv k = jl_get(r, "k");
	if (s && hex_decode_exact(s, sid, 16) == 0 && jv_get_kind(k) == JV_KIND_OBJECT) {
		jv txt = jv_dump_string(k, 0);
		sess_add(ds, sid, jv_string_value(txt));
		jv_free(txt);
	} else {
		jv_free(k);
	}
}

/* One record: {"d":DevEUI,"dn":N,"jn":N,"s":SID,"k":env} from the log, or the snapshot form
 * {"d":..,"jn":..,"last":N,"dns":[...],"sessions":[{"s":..,"k":..}]}. */
static int apply_record(struct js_state *st, jv r)
{
	uint64_t eui = 0;
	const char *d = jl_str(r, "d");
	uint8_t b[8];
	if (!d || hex_decode_exact(d, b, 8) != 0)
		return -1;
	for (int i = 0; i < 8; i++)
		eui = eui << 8 | b[i];
	struct dstate *ds = find(st, eui, true);
	if (jl_has(r, "jn"))
		jn_add(ds, (uint32_t)jl_num(r, "jn", 0));
	jv dns = jl_get(r, "dns");
	if (jv_get_kind(dns) == JV_KIND_ARRAY) {
		jv_array_foreach(dns, i, x)
		{
			if (jv_get_kind(x) == JV_KIND_NUMBER)
				dn_add(ds, (uint16_t)jv_number_value(x));
			jv_free(x);
		}
	}
	jv_free(dns);
	if (jl_has(r, "last"))
		dn_add(ds, (uint16_t)jl_num(r, "last", 0));
	if (jl_has(r, "dn"))
		dn_add(ds, (uint16_t)jl_num(r, "dn", 0));
	if (jl_has(r, "s"))
		apply_session(ds, r);
	jv ss = jl_get(r, "sessions");
	if (jv_get_kind(ss) == JV_KIND_ARRAY) {
		jv_array_foreach(ss, i, x)
		{
			if (jv_get_kind(x) == JV_KIND_OBJECT)
				apply_session(ds, x);
			jv_free(x);
		}
	}
	jv_free(ss);
	return 0;
}

/* Replay a snapshot (first line {"gen":N}) or the log (records stamped "g", kept when not older
 * than the snapshot's generation). NUL bytes are the log's padding and split lines too. */
static int replay(struct js_state *st, const char *path, bool is_log, char *err, size_t errlen)
{
	char *data;
	size_t len;
	if (fs_read_file(path, &data, &len, (size_t)4 << 30) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	unsigned long bad = 0;
	for (char *p = data, *end = data + len; p < end;) {
		size_t n = 0;
		while (p + n < end && p[n] != '\n' && p[n] != 0)
			n++;
		/* in the log, the rest of an older record that a batch overwrote in part (a batch ends
		 * anywhere in a block): no record of the current generations, never a torn one */
		if (n && is_log && (n < 6 || memcmp(p, "{\"g\":\"", 6) != 0)) {
			p += n + 1;
			continue;
		}
		if (n) {
			jv r = jsonl_parse_object(p, n);
			if (!jv_is_valid(r)) {
				bad++; /* a batch torn by a crash: never acknowledged */
			} else if (!is_log && jl_has(r, "gen")) {
				st->gen = (uint32_t)jl_num(r, "gen", 0);
			} else if (is_log) {
				uint64_t g;
				const char *gs = jl_str(r, "g");
				if (gs && hex_decode_exact(gs, (uint8_t[4]){0}, 4) == 0) {
					uint8_t b[4];
					hex_decode_exact(gs, b, 4);
					g = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
					if (g >= st->gen && apply_record(st, r) != 0)
						bad++;
				} else {
					bad++;
				}
			} else if (apply_record(st, r) != 0) {
				bad++;
			}
			jv_free(r);
		}
		p += n + 1;
	}
	if (bad)
		log_warn("%s: %lu unreadable record%s ignored (torn by a crash?)", path, bad, bad == 1 ? "" : "s");
	free(data);
	return 0;
}

static char *put_uint(char *o, uint32_t v)
{
	char t[10];
	int n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*o++ = t[--n];
	return o;
}

struct sbuf {
	char *p;
	size_t len, cap;
};

/* Room for n more bytes in b; the pointer to write them at. */
static char *sbuf_room(struct sbuf *b, size_t n)
{
	if (b->cap - b->len < n) {
		size_t ncap = (b->cap + n) * 2;
		char *nb = realloc(b->p, ncap);
		if (!nb)
			die(EXIT_TEMPORARY, "out of memory");
		b->p = nb;
		b->cap = ncap;
	}
	return b->p + b->len;
}

#define PUT(o, lit) (memcpy(o, lit, sizeof lit - 1), o += sizeof lit - 1)

/* Snapshot records of the table slots [from, to); called with st->mu held, so written by hand
 * (memcpy, no printf: vsnprintf made the holds of the lock ~10 times as long, and each one
 * holds back every JoinReq's DevNonce check). */
static void serialize_slots(struct js_state *st, struct sbuf *b, size_t from, size_t to)
{
	for (size_t i = from; i < to && i < st->cap; i++) {
		struct dstate *d = &st->tab[i];
		if (!d->used)
			continue;
		size_t el[SESSIONS], need = 96 + RECENT * 6;
		for (int k = 0; k < SESSIONS; k++) {
			el[k] = d->sess[k].env ? strlen(d->sess[k].env) : 0;
			need += 48 + el[k];
		}
		char *o = sbuf_room(b, need);
		uint8_t eui[8];
		js_put_be64(eui, d->dev_eui);
		PUT(o, "{\"d\":\"");
		hex_encode(eui, 8, o);
		o += 16;
		*o++ = '"';
		if (d->has_jn) {
			PUT(o, ",\"jn\":");
			o = put_uint(o, d->join_nonce);
		}
		if (d->last_dn >= 0) {
			PUT(o, ",\"last\":");
			o = put_uint(o, (uint32_t)d->last_dn);
		}
		PUT(o, ",\"dns\":[");
		/* oldest first, so a replay keeps the same order */
		for (int k = 0; k < d->n_recent; k++) {
			int idx = d->n_recent < RECENT ? k : (d->recent_pos + k) % RECENT;
			if (k)
				*o++ = ',';
			o = put_uint(o, d->recent[idx]);
		}
		PUT(o, "],\"sessions\":[");
		int first = 1;
		for (int k = 0; k < SESSIONS; k++) {
			int idx = (d->sess_pos + k) % SESSIONS;
			struct session *s = &d->sess[idx];
			if (!s->env)
				continue;
			if (!first)
				*o++ = ',';
			PUT(o, "{\"s\":\"");
			hex_encode(s->sid, 16, o);
			o += 32;
			PUT(o, "\",\"k\":");
			memcpy(o, s->env, el[idx]);
			o += el[idx];
			*o++ = '}';
			first = 0;
		}
		PUT(o, "]}\n");
		b->len = (size_t)(o - b->p);
	}
}

/* The whole table as snapshot records of generation gen, SNAP_CHUNK slots per hold of the
 * table's lock so that joins go on meanwhile. A device changed after its slot was written is in
 * the log as well (records stamped gen or later), and applying a record twice changes nothing. */
static char *serialize(struct js_state *st, uint32_t gen, size_t *outlen)
{
	struct sbuf b = {0};
	pthread_mutex_lock(&st->mu);
	b.cap = 4096 + st->n * 256;
	if (b.cap < st->snap_len + st->snap_len / 4)
		b.cap = st->snap_len + st->snap_len / 4;
	pthread_mutex_unlock(&st->mu);
	b.p = malloc(b.cap);
	if (!b.p)
		die(EXIT_TEMPORARY, "out of memory");
again:
	b.len = 0;
	char *o = sbuf_room(&b, 32);
	PUT(o, "{\"gen\":");
	o = put_uint(o, gen);
	PUT(o, "}\n");
	b.len = (size_t)(o - b.p);
	pthread_mutex_lock(&st->mu);
	struct dstate *tab = st->tab;
	for (size_t from = 0; from < st->cap; from += SNAP_CHUNK) {
		if (st->tab != tab) { /* grown meanwhile: its slots moved */
			pthread_mutex_unlock(&st->mu);
			goto again;
		}
		serialize_slots(st, &b, from, from + SNAP_CHUNK);
		pthread_mutex_unlock(&st->mu);
		pthread_mutex_lock(&st->mu);
	}
	pthread_mutex_unlock(&st->mu);
	*outlen = st->snap_len = b.len;
	return b.p;
}

/* fs_write_atomic, but the data goes to the disk 64 KiB at a time as it is written: one fsync of
 * the whole snapshot (megabytes) at the end made the log's writes meanwhile wait behind it (a
 * 1 KiB O_DSYNC writer beside 5 MB written then fsynced: p99.9 12-32 ms, max 15-69 ms; written
 * in steps: 9 ms and 10-11 ms). One step at a time is in flight, so a log write waits behind
 * 64 KiB at most (~0.3-0.8 ms on this VM's disk; 256 KiB steps took 1-2 ms). */
static int write_snapshot(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	const size_t step = 64 << 10;
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		if (fs_write_all(fd, data + off, n) != 0)
			goto fail;
		/* only a hint to start the writeback: the fsync below is what makes it durable */
		(void)sync_file_range(fd, (off_t)off, (off_t)n,
		                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		fd = -1;
		goto fail;
	}
	char dir[PATH_MAX];
	fs_dir_of(path, dir, sizeof dir);
	return fs_fsync_dir(dir);
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

/* Write the snapshot of generation gen (atomically). */
static int snapshot(struct js_state *st, uint32_t gen)
{
	size_t len;
	uint64_t t0 = js_now_us();
	char *buf = serialize(st, gen, &len);
	uint64_t t1 = js_now_us();
	int rc = write_snapshot(st->snap_path, buf, len);
	free(buf);
	if (rc != 0)
		log_error("unable to write %s: %s", st->snap_path, strerror(errno));
	else
		log_debug("snapshot of generation %u: %zu bytes, %.1f ms to serialize, %.1f ms to write", gen, len,
		          (double)(t1 - t0) / 1e3, (double)(js_now_us() - t1) / 1e3);
	return rc;
}

/* Fold everything into a new snapshot of the next generation; the log starts over in its first
 * half (its older records no longer count). At start only. */
static int compact(struct js_state *st)
{
	uint32_t gen = st->gen + 1;
	if (snapshot(st, gen) != 0)
		return -1;
	st->gen = st->snap_want = st->snap_done = gen;
	st->half = 0;
	st->log_off = 0;
	return 0;
}

/* The snapshot thread: writes the snapshot of each new generation (see struct js_state). */
static void *snapshotter(void *arg)
{
	struct js_state *st = arg;
	pthread_mutex_lock(&st->omu);
	for (;;) {
		while (!st->snap_stop && (st->snap_done >= st->snap_want || st->snap_failed))
			pthread_cond_wait(&st->snap_cv, &st->omu);
		if (st->snap_stop)
			break;
		uint32_t gen = st->snap_want;
		pthread_mutex_unlock(&st->omu);
		int rc = snapshot(st, gen);
		pthread_mutex_lock(&st->omu);
		if (rc == 0)
			st->snap_done = gen;
		else
			st->snap_failed = true; /* the half in use is the last room: joins fail once it is full */
		pthread_cond_broadcast(&st->snap_cv);
	}
	pthread_mutex_unlock(&st->omu);
	return NULL;
}

/* Room for a batch of padded bytes: its offset and the generation to stamp. Moves to the other
 * half when this one is full, once the snapshot that makes its records unneeded is on disk. -1
 * when the log cannot take it. */
static int log_take(struct js_state *st, size_t padded, off_t *off, uint32_t *gen)
{
	off_t half_size = st->log_size / 2 / BLOCK * BLOCK;
	if ((off_t)padded > half_size)
		return -1;
	pthread_mutex_lock(&st->omu);
	while (st->log_off + (off_t)padded > (st->half + 1) * half_size) {
		if (st->snap_done >= st->gen) {
			st->half ^= 1;
			st->log_off = st->half * half_size;
			st->gen++;
			st->snap_want = st->gen;
			pthread_cond_broadcast(&st->snap_cv);
			continue;
		}
		if (st->snap_failed) {
			pthread_mutex_unlock(&st->omu);
			return -1;
		}
		pthread_cond_wait(&st->snap_cv, &st->omu);
	}
	*off = st->log_off;
	*gen = st->gen;
	st->log_off += (off_t)padded;
	pthread_mutex_unlock(&st->omu);
	return 0;
}

/* The batch at off (len bytes of records, zeros to padded) is written: when no batch was taken
 * after it, the next one starts right after its records, in its last block (the zeros it wrote
 * there are all that is overwritten). A batch taken while it was being written started on the
 * next block instead, so that the two writes never shared a page. */
static void log_written(struct js_state *st, off_t off, size_t len, size_t padded, uint32_t gen)
{
	pthread_mutex_lock(&st->omu);
	if (st->gen == gen && st->log_off == off + (off_t)padded)
		st->log_off = off + (off_t)len;
	pthread_mutex_unlock(&st->omu);
}

/* The log is preallocated with written zeros, so an O_DSYNC overwrite needs no metadata update:
 * one flush per batch, and several batches in flight at once. */
static int prealloc_log(struct js_state *st, char *err, size_t errlen)
{
	struct stat sb;
	if (fstat(st->log_fd, &sb) != 0)
		goto fail;
	if (sb.st_size >= st->log_size)
		return 0;
	static const char zero[65536];
	off_t off = sb.st_size & ~(off_t)(BLOCK - 1);
	while (off < st->log_size) {
		ssize_t n = pwrite(st->log_fd, zero, sizeof zero, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += n;
	}
	if (fsync(st->log_fd) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "unable to preallocate %s: %s", st->log_path, strerror(errno));
	return -1;
}

static int pwrite_all(int fd, const char *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Move the pending records' waiters into *out (grown as needed): the batch taken now owns
 * them. Called with cmu held. The number taken. */
static size_t take_waiters(struct js_state *st, struct waiter **out, size_t *cap)
{
	size_t n = st->wq_len;
	if (n > *cap) {
		*cap = n * 2;
		*out = realloc(*out, *cap * sizeof **out);
		if (!*out)
			die(EXIT_TEMPORARY, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		(*out)[i] = st->wq[(st->wq_head + i) % st->wq_cap];
	st->wq_head = (st->wq_head + n) % (st->wq_cap ? st->wq_cap : 1);
	st->wq_len = 0;
	return n;
}

/* Group commit. A writer takes every pending record (and their waiters), writes them in one
 * O_DSYNC write and answers their waiters itself: each batch stands alone, so a record is
 * answered as soon as its own write is on disk, never behind a slower write of older records
 * (a later join of the same device carries the greater JoinNonce and DevNonce, so its record
 * is enough on its own after a crash; an unanswered earlier join was never given out). One
 * write at a time lets the next batch grow meanwhile, the fewest writes for the most records;
 * a second write starts beside it only once the first has taken hedge_us, so one slow write
 * (the disk's tail) delays only the records in it. After a failed write nothing more is
 * written or answered as stored. */
static void *committer(void *arg)
{
	struct js_state *st = arg;
	char *batch = NULL;
	size_t batch_cap = 0, wcap = 0;
	struct waiter *ws = NULL;
	pthread_mutex_lock(&st->cmu);
	for (;;) {
		for (;;) {
			if ((st->pend_len && st->broken) || (st->pend_len == 0 && st->stop))
				break;
			if (st->pend_len && st->writing < st->writing_max) {
				if (st->writing == 0)
					break;
				uint64_t now = js_now_us(), due = st->write_started + st->hedge_us;
				if (now >= due)
					break;
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				uint64_t ns = (uint64_t)ts.tv_nsec + (due - now) * 1000u;
				ts.tv_sec += (time_t)(ns / 1000000000u);
				ts.tv_nsec = (long)(ns % 1000000000u);
				pthread_cond_timedwait(&st->work, &st->cmu, &ts);
				continue;
			}
			pthread_cond_wait(&st->work, &st->cmu);
		}
		if (st->pend_len == 0 && st->stop)
			break;
		/* take everything pending: all its waiters share this write */
		char *tmp = batch;
		size_t tcap = batch_cap;
		batch = st->pend;
		batch_cap = st->pend_cap;
		size_t blen = st->pend_len;
		uint64_t lo = st->taken_seq + 1, hi = st->pend_seq;
		st->taken_seq = hi;
		st->pend = tmp;
		st->pend_cap = tcap;
		st->pend_len = 0;
		size_t nw = take_waiters(st, &ws, &wcap);
		bool writes = !st->broken, ok = writes;
		if (writes) {
			st->writing++;
			st->write_started = js_now_us();
		}
		pthread_mutex_unlock(&st->cmu);

		if (writes) {
			/* zeros to the end of the last block: a batch taken while this one is written
			 * starts on the next block (writes to one page serialize), see log_written */
			size_t padded = (blen + BLOCK - 1) / BLOCK * BLOCK;
			if (padded > batch_cap) {
				batch = realloc(batch, padded);
				if (!batch)
					die(EXIT_TEMPORARY, "out of memory");
				batch_cap = padded;
			}
			memset(batch + blen, 0, padded - blen);
			off_t off = 0;
			uint32_t gen = 0;
			ok = log_take(st, padded, &off, &gen) == 0;
			if (ok) {
				char g[9];
				snprintf(g, sizeof g, "%08X", gen);
				for (char *p = batch; p < batch + blen;) {
					memcpy(p + 6, g, 8); /* {"g":"XXXXXXXX", */
					char *nl = memchr(p, '\n', (size_t)(batch + blen - p));
					p = nl ? nl + 1 : batch + blen;
				}
			}
			uint64_t tw = js_now_us();
			for (size_t i = 0; st->stats && i < nw; i++)
				js_hist_add(&st->stats->lat[JS_LAT_QUEUE], tw > ws[i].queued_us ? tw - ws[i].queued_us : 0);
			if (ok && pwrite_all(st->log_fd, batch, padded, off) != 0) {
				log_error("unable to store joins in %s: %s", st->log_path, strerror(errno));
				ok = false;
			} else if (!ok) {
				log_error("unable to store joins: the log cannot take them");
			}
			if (ok)
				log_written(st, off, blen, padded, gen);
			if (st->stats && ok) {
				js_hist_add(&st->stats->lat[JS_LAT_WRITE], js_now_us() - tw);
				__atomic_add_fetch(&st->stats->batches, 1, __ATOMIC_RELAXED);
				__atomic_add_fetch(&st->stats->batched, hi - lo + 1, __ATOMIC_RELAXED);
			}
		}

		pthread_mutex_lock(&st->cmu);
		if (writes)
			st->writing--;
		if (!ok)
			st->broken = true; /* after a failed write the log's content is unknown */
		bool more = st->pend_len > 0;
		pthread_mutex_unlock(&st->cmu);
		if (more) /* records that waited for a free write (or the hedge) go now */
			pthread_cond_signal(&st->work);
		for (size_t i = 0; i < nw; i++)
			ws[i].done(ws[i].arg, ok ? 0 : -1);
		pthread_mutex_lock(&st->cmu);
	}
	pthread_mutex_unlock(&st->cmu);
	free(batch);
	free(ws);
	return NULL;
}

int js_state_open(struct js_state **out, const char *dir, char *err, size_t errlen)
{
	struct js_state *st = calloc(1, sizeof *st);
	if (!st)
		die(EXIT_TEMPORARY, "out of memory");
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->cmu, NULL);
	pthread_cond_init(&st->work, NULL);
	pthread_mutex_init(&st->omu, NULL);
	pthread_cond_init(&st->snap_cv, NULL);
	st->log_size = LOG_SIZE;
	st->log_fd = st->lock_fd = -1;
	*out = st;
	if (!dir)
		return 0;
	const char *ls = getenv("LJS_LOG_SIZE");
	if (ls && *ls) {
		char *end;
		unsigned long long v = strtoull(ls, &end, 10);
		if (*end == 'k' || *end == 'K')
			v <<= 10, end++;
		else if (*end == 'm' || *end == 'M')
			v <<= 20, end++;
		if (*end || (off_t)v < LOG_MIN || v > (1ULL << 40)) {
			snprintf(err, errlen, "LJS_LOG_SIZE: not a size of 64k or more: %s", ls);
			return -2;
		}
		st->log_size = (off_t)v / (2 * BLOCK) * (2 * BLOCK);
	}
	char path[PATH_MAX];
	st->dir = strdup(dir);
	if (fs_mkdir_p(dir) != 0) {
		snprintf(err, errlen, "unable to create %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "%s/lock", dir);
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "unable to lock %s: %s", path,
		         errno == EWOULDBLOCK ? "another ljs-join uses this state directory" : strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "%s/state.jsonl", dir);
	st->snap_path = strdup(path);
	snprintf(path, sizeof path, "%s/joins.log", dir);
	st->log_path = strdup(path);
	if (replay(st, st->snap_path, false, err, errlen) != 0 || replay(st, st->log_path, true, err, errlen) != 0)
		return -1;
	st->log_fd = open(st->log_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->log_fd < 0) {
		snprintf(err, errlen, "unable to open %s: %s", st->log_path, strerror(errno));
		return -1;
	}
	if (prealloc_log(st, err, errlen) != 0)
		return -1;
	close(st->log_fd);
	st->log_fd = open(st->log_path, O_WRONLY | O_DSYNC | O_CLOEXEC);
	if (st->log_fd < 0) {
		snprintf(err, errlen, "unable to open %s: %s", st->log_path, strerror(errno));
		return -1;
	}
	if (compact(st) != 0) {
		snprintf(err, errlen, "unable to compact the state in %s", dir);
		return -1;
	}
	st->writing_max = WRITING_MAX;
	st->hedge_us = HEDGE_US;
	if (pthread_create(&st->snap_thread, NULL, snapshotter, st) != 0) {
		snprintf(err, errlen, "unable to start the snapshot thread");
		return -1;
	}
	st->snap_running = true;
	for (int i = 0; i < COMMITTERS; i++) {
		if (pthread_create(&st->threads[i], NULL, committer, st) != 0) {
			snprintf(err, errlen, "unable to start the committer threads");
			return -1;
		}
		st->n_threads++;
	}
	return 0;
}

void js_state_close(struct js_state *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->cmu);
	st->stop = true;
	pthread_cond_broadcast(&st->work);
	pthread_mutex_unlock(&st->cmu);
	for (int i = 0; i < st->n_threads; i++)
		pthread_join(st->threads[i], NULL);
	if (st->snap_running) {
		pthread_mutex_lock(&st->omu);
		st->snap_stop = true;
		pthread_cond_broadcast(&st->snap_cv);
		pthread_mutex_unlock(&st->omu);
		pthread_join(st->snap_thread, NULL);
	}
	/* nobody left to write them (no writer started, or a failed write stopped the queue) */
	while (st->wq_len) {
		struct waiter w = st->wq[st->wq_head];
		st->wq_head = (st->wq_head + 1) % st->wq_cap;
		st->wq_len--;
		w.done(w.arg, -1);
	}
	free(st->wq);
	if (st->log_fd >= 0)
		close(st->log_fd);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	for (size_t i = 0; i < st->cap; i++)
		for (int k = 0; k < SESSIONS; k++)
			free(st->tab[i].sess[k].env);
	free(st->tab);
	free(st->pend);
	free(st->dir);
	free(st->log_path);
	free(st->snap_path);
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->cmu);
	pthread_cond_destroy(&st->work);
	pthread_cond_destroy(&st->snap_cv);
	pthread_mutex_destroy(&st->omu);
	free(st);
}

void js_state_expect(struct js_state *st, size_t devices)
{
	pthread_mutex_lock(&st->mu);
	size_t ncap = cap_for(st->cap, devices);
	if (ncap > st->cap)
		grow(st, ncap);
	pthread_mutex_unlock(&st->mu);
}

int js_state_reserve(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, bool strict,
                     uint32_t *join_nonce)
{
	int rc = JS_RESERVE_OK;
	pthread_mutex_lock(&st->mu);
	struct dstate *d = find(st, dev_eui, true);
	if (strict ? (int32_t)dev_nonce <= d->last_dn : dn_seen(d, dev_nonce))
		rc = JS_RESERVE_REPLAY;
	else if (d->has_jn && d->join_nonce >= 0xFFFFFF)
		rc = JS_RESERVE_EXHAUSTED;
	else {
		d->join_nonce = d->has_jn ? d->join_nonce + 1 : 0;
		d->has_jn = true;
		*join_nonce = d->join_nonce;
		dn_add(d, dev_nonce);
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void js_state_commit_async(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, uint32_t join_nonce,
                           const uint8_t sid[16], const char *env, js_state_done_fn done, void *arg)
{
	char h[33];
	if (sid && env) {
		pthread_mutex_lock(&st->mu);
		sess_add(find(st, dev_eui, true), sid, env);
		pthread_mutex_unlock(&st->mu);
		hex_encode(sid, 16, h);
	}
	if (st->log_fd < 0) {
		done(arg, 0);
		return;
	}

	uint64_t queued_us = st->stats ? js_now_us() : 0;
	pthread_mutex_lock(&st->cmu);
	if (st->broken) {
		pthread_mutex_unlock(&st->cmu);
		done(arg, -1);
		return;
	}
	bool first = st->pend_len == 0;
	/* the generation is stamped by the committer at write time */
	size_t need = 128 + (sid && env ? 48 + strlen(env) : 0);
	if (st->pend_cap - st->pend_len < need) {
		size_t ncap = (st->pend_cap + need) * 2;
		char *nb = realloc(st->pend, ncap);
		if (!nb)
			die(EXIT_TEMPORARY, "out of memory");
		st->pend = nb;
		st->pend_cap = ncap;
	}
	/* {"g":"00000000","d":"%016llX","dn":%u,"jn":%u[,"s":"%s","k":%s]}\n, without printf */
	char *o = st->pend + st->pend_len;
	uint8_t eui[8];
	js_put_be64(eui, dev_eui);
	PUT(o, "{\"g\":\"00000000\",\"d\":\"");
	hex_encode(eui, 8, o);
	o += 16;
	PUT(o, "\",\"dn\":");
	o = put_uint(o, dev_nonce);
	PUT(o, ",\"jn\":");
	o = put_uint(o, join_nonce);
	if (sid && env) {
		size_t el = strlen(env);
		PUT(o, ",\"s\":\"");
		memcpy(o, h, 32);
		o += 32;
		PUT(o, "\",\"k\":");
		memcpy(o, env, el);
		o += el;
	}
	PUT(o, "}\n");
	st->pend_len = (size_t)(o - st->pend);
	if (st->wq_len == st->wq_cap) {
		size_t ncap = st->wq_cap ? st->wq_cap * 2 : 1024;
		struct waiter *nq = malloc(ncap * sizeof *nq);
		if (!nq)
			die(EXIT_TEMPORARY, "out of memory");
		for (size_t i = 0; i < st->wq_len; i++)
			nq[i] = st->wq[(st->wq_head + i) % st->wq_cap];
		free(st->wq);
		st->wq = nq;
		st->wq_cap = ncap;
		st->wq_head = 0;
	}
	st->wq[(st->wq_head + st->wq_len++) % st->wq_cap] =
		(struct waiter){.seq = ++st->pend_seq, .queued_us = queued_us, .done = done, .arg = arg};
	pthread_mutex_unlock(&st->cmu);
	/* the first record of a batch calls a writer (one that may write now, or wait for the hedge);
	 * the others join it, and a write that ends calls a writer again. Signalled after the unlock:
	 * the writer woken does not wake only to wait for the lock. */
	if (first)
		pthread_cond_signal(&st->work);
}

struct sync_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
};

static void sync_done(void *arg, int rc)
{
	struct sync_wait *w = arg;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int js_state_peek(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, bool strict, uint32_t *join_nonce)
{
	int rc = JS_RESERVE_OK;
	pthread_mutex_lock(&st->mu);
	struct dstate *d = find(st, dev_eui, false);
	if (!d)
		*join_nonce = 0;
	else if (strict ? (int32_t)dev_nonce <= d->last_dn : dn_seen(d, dev_nonce))
		rc = JS_RESERVE_REPLAY;
	else if (d->has_jn && d->join_nonce >= 0xFFFFFF)
		rc = JS_RESERVE_EXHAUSTED;
	else
		*join_nonce = d->has_jn ? d->join_nonce + 1 : 0;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int js_state_commit(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, uint32_t join_nonce,
                    const uint8_t sid[16], const char *env)
{
	struct sync_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	js_state_commit_async(st, dev_eui, dev_nonce, join_nonce, sid, env, sync_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return w.rc;
}

void js_state_set_stats(struct js_state *st, struct js_stats *stats)
{
	st->stats = stats;
}

char *js_state_session(struct js_state *st, uint64_t dev_eui, const uint8_t sid[16])
{
	char *env = NULL;
	pthread_mutex_lock(&st->mu);
	struct dstate *d = find(st, dev_eui, false);
	for (int k = 0; d && k < SESSIONS; k++)
		if (d->sess[k].env && memcmp(d->sess[k].sid, sid, 16) == 0)
			env = strdup(d->sess[k].env);
	pthread_mutex_unlock(&st->mu);
	return env;
}

long js_state_last_join_nonce(struct js_state *st, uint64_t dev_eui)
{
	long v = -1;
	pthread_mutex_lock(&st->mu);
	struct dstate *d = find(st, dev_eui, false);
	if (d && d->has_jn)
		v = d->join_nonce;
	pthread_mutex_unlock(&st->mu);
	return v;
}
