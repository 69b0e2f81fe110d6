#include "js_state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "hex.h"
#include "jsonl.h"
#include "log.h"

enum {
	RECENT = 32,  /* DevNonces remembered for devices older than 1.0.4 */
	SESSIONS = 4, /* sessions remembered per device for AppSKeyReq */
};
#define COMPACT_AT ((off_t)64 << 20)

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
	off_t log_size;

	/* group commit */
	pthread_mutex_t cmu;
	pthread_cond_t work, done;
	char *pend;
	size_t pend_len, pend_cap;
	uint64_t pend_seq, synced_seq;
	bool broken, stop;
	pthread_t thread;
	bool thread_started;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct dstate *find(struct js_state *st, uint64_t eui, bool create)
{
	if (create && (st->n + 1) * 4 > st->cap * 3) {
		size_t ncap = st->cap ? st->cap * 2 : 1024;
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

static int replay(struct js_state *st, const char *path, char *err, size_t errlen)
{
	char *data;
	size_t len;
	if (fs_read_file(path, &data, &len, (size_t)4 << 30) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	unsigned long lineno = 0;
	for (char *p = data, *end = data + len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		jv r = n ? jsonl_parse_object(p, n) : jv_invalid();
		if (n && (!jv_is_valid(r) || apply_record(st, r) != 0))
			/* only the last line can be torn by a crash; anything else is worth a word */
			log_warn("%s:%lu: %s record ignored", path, lineno, nl ? "unreadable" : "torn last");
		jv_free(r);
		p += n + (nl ? 1 : 0);
	}
	free(data);
	return 0;
}

static int emit(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int emit(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < *cap - *len) {
			*len += (size_t)n;
			return 0;
		}
		size_t ncap = (*cap + (size_t)n + 1) * 2;
		char *nb = realloc(*buf, ncap);
		if (!nb)
			die(EXIT_TEMPORARY, "out of memory");
		*buf = nb;
		*cap = ncap;
	}
}

/* The whole table as snapshot records; called with st->mu held. */
static char *serialize(struct js_state *st, size_t *outlen)
{
	size_t len = 0, cap = 4096 + st->n * 256;
	char *buf = malloc(cap);
	if (!buf)
		die(EXIT_TEMPORARY, "out of memory");
	buf[0] = 0;
	for (size_t i = 0; i < st->cap; i++) {
		struct dstate *d = &st->tab[i];
		if (!d->used)
			continue;
		emit(&buf, &len, &cap, "{\"d\":\"%016llX\"", (unsigned long long)d->dev_eui);
		if (d->has_jn)
			emit(&buf, &len, &cap, ",\"jn\":%u", d->join_nonce);
		if (d->last_dn >= 0)
			emit(&buf, &len, &cap, ",\"last\":%d", (int)d->last_dn);
		emit(&buf, &len, &cap, ",\"dns\":[");
		/* oldest first, so a replay keeps the same order */
		for (int k = 0; k < d->n_recent; k++) {
			int idx = d->n_recent < RECENT ? k : (d->recent_pos + k) % RECENT;
			emit(&buf, &len, &cap, "%s%u", k ? "," : "", d->recent[idx]);
		}
		emit(&buf, &len, &cap, "],\"sessions\":[");
		int first = 1;
		for (int k = 0; k < SESSIONS; k++) {
			struct session *s = &d->sess[(d->sess_pos + k) % SESSIONS];
			if (!s->env)
				continue;
			char h[33];
			hex_encode(s->sid, 16, h);
			emit(&buf, &len, &cap, "%s{\"s\":\"%s\",\"k\":%s}", first ? "" : ",", h, s->env);
			first = 0;
		}
		emit(&buf, &len, &cap, "]}\n");
	}
	*outlen = len;
	return buf;
}

static int compact(struct js_state *st)
{
	size_t len;
	pthread_mutex_lock(&st->mu);
	char *buf = serialize(st, &len);
	pthread_mutex_unlock(&st->mu);
	int rc = fs_write_atomic(st->snap_path, buf, len);
	free(buf);
	if (rc != 0) {
		log_error("unable to write %s: %s", st->snap_path, strerror(errno));
		return -1;
	}
	if (ftruncate(st->log_fd, 0) != 0 || lseek(st->log_fd, 0, SEEK_SET) < 0 || fdatasync(st->log_fd) != 0) {
		log_error("unable to truncate %s: %s", st->log_path, strerror(errno));
		return -1;
	}
	st->log_size = 0;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *committer(void *arg)
{
	struct js_state *st = arg;
	char *batch = NULL;
	size_t batch_cap = 0;
	pthread_mutex_lock(&st->cmu);
	for (;;) {
		while (st->pend_len == 0 && !st->stop)
			pthread_cond_wait(&st->work, &st->cmu);
		if (st->pend_len == 0 && st->stop)
			break;
		/* take the whole pending buffer: everyone waiting now shares this fdatasync */
		char *tmp = batch;
		size_t tcap = batch_cap;
		batch = st->pend;
		batch_cap = st->pend_cap;
		size_t blen = st->pend_len;
		uint64_t upto = st->pend_seq;
		st->pend = tmp;
		st->pend_cap = tcap;
		st->pend_len = 0;
		pthread_mutex_unlock(&st->cmu);

		int ok = write_all(st->log_fd, batch, blen) == 0 && fdatasync(st->log_fd) == 0;
		if (!ok)
			log_error("unable to store joins in %s: %s", st->log_path, strerror(errno));
		st->log_size += (off_t)blen;
		if (ok && st->log_size > COMPACT_AT)
			compact(st);

		pthread_mutex_lock(&st->cmu);
		if (!ok)
			st->broken = true; /* after a failed fsync the file's content is unknown */
		else
			st->synced_seq = upto;
		pthread_cond_broadcast(&st->done);
	}
	pthread_mutex_unlock(&st->cmu);
	free(batch);
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
	pthread_cond_init(&st->done, NULL);
	st->log_fd = st->lock_fd = -1;
	*out = st;
	if (!dir)
		return 0;
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
	if (replay(st, st->snap_path, err, errlen) != 0 || replay(st, st->log_path, err, errlen) != 0)
		return -1;
	st->log_fd = open(st->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (st->log_fd < 0) {
		snprintf(err, errlen, "unable to open %s: %s", st->log_path, strerror(errno));
		return -1;
	}
	if (compact(st) != 0) {
		snprintf(err, errlen, "unable to compact the state in %s", dir);
		return -1;
	}
	if (pthread_create(&st->thread, NULL, committer, st) != 0) {
		snprintf(err, errlen, "unable to start the committer thread");
		return -1;
	}
	st->thread_started = true;
	return 0;
}

void js_state_close(struct js_state *st)
{
	if (!st)
		return;
	if (st->thread_started) {
		pthread_mutex_lock(&st->cmu);
		st->stop = true;
		pthread_cond_signal(&st->work);
		pthread_mutex_unlock(&st->cmu);
		pthread_join(st->thread, NULL);
	}
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
	pthread_cond_destroy(&st->done);
	free(st);
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

int js_state_commit(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, uint32_t join_nonce,
                    const uint8_t sid[16], const char *env)
{
	char head[128], h[33];
	int n = snprintf(head, sizeof head, "{\"d\":\"%016llX\",\"dn\":%u,\"jn\":%u",
	                 (unsigned long long)dev_eui, dev_nonce, join_nonce);
	if (sid && env) {
		pthread_mutex_lock(&st->mu);
		sess_add(find(st, dev_eui, true), sid, env);
		pthread_mutex_unlock(&st->mu);
		hex_encode(sid, 16, h);
	}
	if (st->log_fd < 0)
		return 0;

	pthread_mutex_lock(&st->cmu);
	if (st->broken) {
		pthread_mutex_unlock(&st->cmu);
		return -1;
	}
	emit(&st->pend, &st->pend_len, &st->pend_cap, "%.*s", n, head);
	if (sid && env)
		emit(&st->pend, &st->pend_len, &st->pend_cap, ",\"s\":\"%s\",\"k\":%s", h, env);
	emit(&st->pend, &st->pend_len, &st->pend_cap, "}\n");
	uint64_t my = ++st->pend_seq;
	pthread_cond_signal(&st->work);
	while (st->synced_seq < my && !st->broken)
		pthread_cond_wait(&st->done, &st->cmu);
	int rc = st->synced_seq >= my ? 0 : -1;
	pthread_mutex_unlock(&st->cmu);
	return rc;
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
