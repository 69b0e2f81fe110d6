#include "writer.h"

#include "jsonl.h"
#include "log.h"
#include "lwm2m_path.h"
#include "lwm2m_shadow.h"
#include "objmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Path states while a desired value is pending:
 *   new        to be written as soon as the device is registered
 *   inflight   a write is out (id)
 *   offline    the device is not registered; written on its next register
 *   transient  failed for a reason that may pass (no answer, held too long, 5.xx but 5.01 and
 *              5.05); retried whenever the device talks (register, update, wake)
 *   failed     refused by the device (4.xx, 5.01 Not Implemented, 5.05 Proxying Not Supported):
 *              retried on a new registration or a new desired value */
#define ST_NEW "new"
#define ST_INFLIGHT "inflight"
#define ST_OFFLINE "offline"
#define ST_TRANSIENT "transient"
#define ST_FAILED "failed"

struct writer {
	struct ctlclient *ctl;
	struct writer_opts o;
	FILE *out;
	jv things; /* key -> {"thing", "shadow", "seq", "paths": {path: {"v", "st", "id"}}} */
	size_t nthings; /* its length: libjq's jv_object_length walks every slot */
	jv by_ep;       /* ep -> {key: true}: its things (plain and named shadows) without a walk of things */
	jv regs;   /* ep -> registration id */
	jv ids;    /* "<id>" -> {"key", "inst", "values": {path: v}, "talks"} */
	jv talks;  /* ep -> how many times it registered, updated or woke (seen by this writer) */
	double seq;
	size_t inflight;
	int listed; /* regs holds lwm2m-listen's registrations (answer to list) */
};

struct writer *writer_new(struct ctlclient *ctl, const struct writer_opts *opts, FILE *out)
{
	struct writer *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->ctl = ctl;
	w->o = *opts;
	w->out = out;
	w->things = jv_object();
	w->by_ep = jv_object();
	w->regs = jv_object();
	w->ids = jv_object();
	w->talks = jv_object();
	return w;
}

void writer_free(struct writer *w)
{
	if (!w)
		return;
	jv_free(w->things);
	jv_free(w->by_ep);
	jv_free(w->regs);
	jv_free(w->ids);
	jv_free(w->talks);
	free(w);
}

size_t writer_in_flight(const struct writer *w)
{
	return w->inflight;
}

int writer_listed(const struct writer *w)
{
	return w->listed;
}

size_t writer_pending(const struct writer *w)
{
	size_t n = 0;
	jv_object_foreach(w->things, k, t)
	{
		n += (size_t)jv_object_length(jl_get(t, "paths"));
		jv_free(k);
		jv_free(t);
	}
	return n;
}

/* A value as JSON text for a log line. */
static const char *show(jv v, char *buf, size_t size)
{
	jv s = jv_dump_string(v, 0);
	snprintf(buf, size, "%s", jv_string_value(s));
	jv_free(s);
	return buf;
}

static jv id_key(double id)
{
	return jv_string_fmt("%.0f", id);
}

/* w->things changes only through these two, which keep w->nthings and w->by_ep. */
static void things_set(struct writer *w, const char *key, jv t)
{
	if (!jv_object_has(jv_copy(w->things), jv_string(key))) {
		const char *ep = jl_str(t, "thing");
		jv mine = jv_object_get(jv_copy(w->by_ep), jv_string(ep));
		if (!jv_is_valid(mine))
			mine = jv_object();
		w->by_ep = jv_object_set(w->by_ep, jv_string(ep), jv_object_set(mine, jv_string(key), jv_true()));
		w->nthings++;
	}
	w->things = jv_object_set(w->things, jv_string(key), t);
}

static void things_delete(struct writer *w, jv key)
{
	jv t = jv_object_get(jv_copy(w->things), jv_copy(key));
	if (jv_is_valid(t)) {
		const char *ep = jl_str(t, "thing");
		jv mine = jv_object_delete(jv_object_get(jv_copy(w->by_ep), jv_string(ep)), jv_copy(key));
		if (jv_object_length(jv_copy(mine)) == 0) {
			jv_free(mine);
			w->by_ep = jv_object_delete(w->by_ep, jv_string(ep));
		} else {
			w->by_ep = jv_object_set(w->by_ep, jv_string(ep), mine);
		}
		w->nthings--;
	}
	jv_free(t);
	w->things = jv_object_delete(w->things, key);
}

static void emit(struct writer *w, jv thing, jv reported)
{
	jv up = jv_object();
	up = jv_object_set(up, jv_string("thing"), jl_get(thing, "thing"));
	jv sh = jl_get(thing, "shadow");
	if (jv_get_kind(sh) == JV_KIND_STRING)
		up = jv_object_set(up, jv_string("shadow"), sh);
	else
		jv_free(sh);
	up = jv_object_set(up, jv_string("state"), jv_object_set(jv_object(), jv_string("reported"), reported));
	jv_free(thing);
	if (jsonl_put(w->out, up) < 0)
		die_sys(EXIT_TEMPORARY, "unable to write to stdout");
}

static jv error_record(const char *code, const char *err)
{
	jv e = jv_object();
	e = jv_object_set(e, jv_string("code"), jv_string(code));
	e = jv_object_set(e, jv_string("error"), jv_string(err));
	e = jv_object_set(e, jv_string("time"), jv_number((double)time(NULL)));
	return e;
}

/* Record errors (object path -> record, consumed) in the shadow. */
static void emit_errors(struct writer *w, jv thing, jv errors)
{
	if (jv_object_length(jv_copy(errors)) == 0) {
		jv_free(errors);
		jv_free(thing);
		return;
	}
	emit(w, thing, jv_object_set(jv_object(), jv_string(WRITER_ERRORS_KEY), errors));
}

static void set_path(struct writer *w, const char *key, const char *path, jv v, const char *st, double id)
{
	jv t = jv_object_get(jv_copy(w->things), jv_string(key));
	if (!jv_is_valid(t)) {
		jv_free(v);
		return;
	}
	jv paths = jl_get(t, "paths");
	jv p = jv_object_get(jv_copy(paths), jv_string(path));
	if (!jv_is_valid(p) && !jv_is_valid(v)) {
		/* a state change for a path that is no longer pending: a path is never without its value */
		jv_free(p);
		jv_free(paths);
		jv_free(t);
		return;
	}
	if (!jv_is_valid(p))
		p = jv_object();
	if (jv_is_valid(v))
		p = jv_object_set(p, jv_string("v"), v);
	p = jv_object_set(p, jv_string("st"), jv_string(st));
	p = id > 0 ? jv_object_set(p, jv_string("id"), jv_number(id)) : jv_object_delete(p, jv_string("id"));
	paths = jv_object_set(paths, jv_string(path), p);
	t = jv_object_set(t, jv_string("paths"), paths);
	things_set(w, key, t);
}

static void drop_path(struct writer *w, const char *key, const char *path)
{
	jv t = jv_object_get(jv_copy(w->things), jv_string(key));
	if (!jv_is_valid(t))
		return;
	jv paths = jv_object_delete(jl_get(t, "paths"), jv_string(path));
	if (jv_object_length(jv_copy(paths)) == 0) {
		jv_free(paths);
		jv_free(t);
		things_delete(w, jv_string(key));
		return;
	}
	t = jv_object_set(t, jv_string("paths"), paths);
	things_set(w, key, t);
}

/* Which desired paths can be written at all, from the object model. NULL when fine, else the
 * reason; *code gets the code recorded in the shadow. */
static const char *check_path(const char *path, jv v, const char **code)
{
	struct lwm2m_path p;
	*code = "not-writable";
	if (lwm2m_path_parse(path, &p) < 0 || p.len < 3)
		return "not an LwM2M resource path";
	const struct lwm2m_resource_def *d = objmodel_resource(p.id[0], p.id[2]);
	if (!d) {
		*code = "unknown-resource";
		return objmodel_object(p.id[0]) ? "the object model has no such resource"
		                                  : "the object model has no such object (load its DDF with -o)";
	}
	if (!(d->ops & LWM2M_OP_W))
		return d->ops & LWM2M_OP_E ? "an executable resource, not a value" : "a read-only resource";
	if (d->multiple && p.len == 3)
		return "a multiple-instance resource: give its instances, {\"0\":v,...}";
	if (!d->multiple && p.len == 4)
		return "a single-instance resource has no resource instances";
	*code = "bad-value";
	jv_kind k = jv_get_kind(v);
	switch (d->type) {
	case LWM2M_T_STRING:
	case LWM2M_T_OPAQUE:
	case LWM2M_T_OBJLNK:
	case LWM2M_T_CORELNK:
		return k == JV_KIND_STRING ? NULL : "the resource takes a string";
	case LWM2M_T_BOOLEAN:
		return k == JV_KIND_TRUE || k == JV_KIND_FALSE ? NULL : "the resource takes a boolean";
	case LWM2M_T_FLOAT:
		return k == JV_KIND_NUMBER ? NULL : "the resource takes a number";
	case LWM2M_T_INTEGER:
	case LWM2M_T_UNSIGNED:
	case LWM2M_T_TIME:
		if (k != JV_KIND_NUMBER || jv_number_value(v) != floor(jv_number_value(v)))
			return "the resource takes an integer";
		if (d->type == LWM2M_T_UNSIGNED && jv_number_value(v) < 0)
			return "the resource takes an unsigned integer";
		return NULL;
	default:
		*code = "not-writable";
		return "the resource has no value type";
	}
}

/* The device answered with a CoAP error code (not a code of lwm2m-listen's own). */
static int device_code(const char *code)
{
	return code && (code[0] == '4' || code[0] == '5') && code[1] == '.';
}

/* 5.01 and 5.05 do not pass (Wakaama's client answers 5.01 to a write of its time zone) */
static int transient_code(const char *code)
{
	return !code || (code[0] == '5' && strcmp(code, "5.01") != 0 && strcmp(code, "5.05") != 0) || strcmp(code, "timeout") == 0 || strcmp(code, "queue-full") == 0 ||
	       strcmp(code, "queue-expired") == 0 || strcmp(code, "send-failed") == 0 || strcmp(code, "reset") == 0 ||
	       strcmp(code, "unknown-endpoint") == 0 || strcmp(code, "cancelled") == 0;
}

static void send_group(struct writer *w, const char *key, const char *ep, const char *inst, jv values)
{
	jv cmd = jv_object();
	cmd = jv_object_set(cmd, jv_string("op"), jv_string("write"));
	cmd = jv_object_set(cmd, jv_string("ep"), jv_string(ep));
	cmd = jv_object_set(cmd, jv_string("path"), jv_string(inst));
	cmd = jv_object_set(cmd, jv_string("values"), jv_copy(values));
	if (w->o.timeout > 0)
		cmd = jv_object_set(cmd, jv_string("timeout"), jv_number(w->o.timeout));
	double id = ctl_send(w->ctl, cmd);
	if (id <= 0) {
		jv_free(values);
		return; /* disconnected: writer_connected sends again */
	}
	w->inflight++;
	jv rec = jv_object();
	rec = jv_object_set(rec, jv_string("key"), jv_string(key));
	rec = jv_object_set(rec, jv_string("inst"), jv_string(inst));
	rec = jv_object_set(rec, jv_string("values"), jv_copy(values));
	jv talks = jv_object_get(jv_copy(w->talks), jv_string(ep));
	if (jv_is_valid(talks))
		rec = jv_object_set(rec, jv_string("talks"), talks);
	else
		jv_free(talks);
	w->ids = jv_object_set(w->ids, id_key(id), rec);
	jv_object_foreach(values, k, v)
	{
		char vb[128];
		log_debug("%s: writing %s = %s", ep, jv_string_value(k), show(jv_copy(v), vb, sizeof vb));
		set_path(w, key, jv_string_value(k), jv_invalid(), ST_INFLIGHT, id);
		jv_free(k);
		jv_free(v);
	}
	jv_free(values);
}

/* Write what is waiting for a thing. retry: also paths that failed for a transient reason (the
 * device talked); fresh_reg: and those the device refused (a new registration). */
static void flush(struct writer *w, const char *key, int retry, int fresh_reg)
{
	jv t = jv_object_get(jv_copy(w->things), jv_string(key));
	if (!jv_is_valid(t))
		return;
	if (!ctl_connected(w->ctl) || !w->listed) {
		jv_free(t);
		return; /* on_list flushes every thing */
	}
	const char *ep = jl_str(t, "thing");
	jv reg = jv_object_get(jv_copy(w->regs), jv_string(ep));
	int online = jv_is_valid(reg);
	jv_free(reg);
	jv groups = jv_object(); /* instance path -> values */
	jv offline = jv_object();
	jv paths = jl_get(t, "paths");
	jv_object_foreach(paths, k, p)
	{
		const char *st = jl_str(p, "st");
		int go = strcmp(st, ST_NEW) == 0 || (retry && (strcmp(st, ST_TRANSIENT) == 0 || strcmp(st, ST_OFFLINE) == 0)) ||
		         (fresh_reg && strcmp(st, ST_FAILED) == 0);
		if (go && !online) {
			if (strcmp(st, ST_OFFLINE) != 0) {
				offline = jv_object_set(offline, jv_copy(k),
				                        error_record("offline", "the device is not registered; the write waits for its registration"));
				set_path(w, key, jv_string_value(k), jv_invalid(), ST_OFFLINE, 0);
			}
		} else if (go) {
			struct lwm2m_path lp;
			char inst[LWM2M_PATH_STRLEN];
			if (lwm2m_path_parse(jv_string_value(k), &lp) == 0) {
				lp.len = 2;
				lwm2m_path_str(&lp, inst, sizeof inst);
				jv g = jv_object_get(jv_copy(groups), jv_string(inst));
				if (!jv_is_valid(g))
					g = jv_object();
				g = jv_object_set(g, jv_copy(k), jl_get(p, "v"));
				groups = jv_object_set(groups, jv_string(inst), g);
			}
		}
		jv_free(k);
		jv_free(p);
	}
	jv_free(paths);
	size_t noff = (size_t)jv_object_length(jv_copy(offline));
	if (noff)
		log_info("%s: not registered; %zu write%s wait%s for its registration", ep, noff, noff == 1 ? "" : "s",
		         noff == 1 ? "s" : "");
	emit_errors(w, jv_copy(t), offline);
	jv_object_foreach(groups, inst, vals)
	{
		send_group(w, key, ep, jv_string_value(inst), vals);
		jv_free(inst);
	}
	jv_free(groups);
	jv_free(t);
}

static void evict_if_full(struct writer *w, const char *keep)
{
	while (w->nthings > w->o.max_things) {
		jv oldest = jv_null();
		double best = 0;
		jv_object_foreach(w->things, k, t)
		{
			double s = jl_num(t, "seq", 0);
			if (strcmp(jv_string_value(k), keep) != 0 && (jv_get_kind(oldest) == JV_KIND_NULL || s < best)) {
				jv_free(oldest);
				oldest = jv_copy(k);
				best = s;
			}
			jv_free(k);
			jv_free(t);
		}
		if (jv_get_kind(oldest) != JV_KIND_STRING) {
			jv_free(oldest);
			return;
		}
		log_warn("too many things with pending writes (-m %zu): forgetting those of %s (its delta stays in the shadow)",
		         w->o.max_things, jv_string_value(oldest));
		things_delete(w, oldest);
	}
}

int writer_delta(struct writer *w, jv delta, const char **why)
{
	const char *thing = jl_str(delta, "thing");
	jv shadow = jl_get(delta, "shadow");
	jv state = jl_get(delta, "state");
	if (!thing || !*thing || jv_get_kind(state) != JV_KIND_OBJECT ||
	    (jv_is_valid(shadow) && jv_get_kind(shadow) != JV_KIND_STRING)) {
		*why = !thing || !*thing ? "a delta needs \"thing\" (a string)" : jv_get_kind(state) != JV_KIND_OBJECT ? "a delta needs \"state\" (an object)" : "\"shadow\" must be a string";
		jv_free(shadow);
		jv_free(state);
		jv_free(delta);
		return -1;
	}
	char *key = jv_get_kind(shadow) == JV_KIND_STRING ? NULL : strdup(thing);
	if (!key) {
		jv ks = jv_string_fmt("%s|%s", thing, jv_string_value(shadow));
		key = strdup(jv_string_value(ks));
		jv_free(ks);
	}
	if (!key)
		die(EXIT_TEMPORARY, "out of memory");

	jv bad;
	jv values = lwm2m_state_flatten(state, &bad);
	jv_free(state);
	jv errors = jv_object();
	jv_object_foreach(bad, k, reason)
	{
		log_warn("%s: refusing desired %s: %s", thing, jv_string_value(k), jv_string_value(reason));
		errors = jv_object_set(errors, k, error_record("not-lwm2m", jv_string_value(reason)));
		jv_free(reason);
	}
	jv_free(bad);

	jv t = jv_object_get(jv_copy(w->things), jv_string(key));
	if (!jv_is_valid(t)) {
		t = jv_object();
		t = jv_object_set(t, jv_string("thing"), jv_string(thing));
		t = jv_object_set(t, jv_string("shadow"), jv_is_valid(shadow) ? jv_copy(shadow) : jv_null());
		t = jv_object_set(t, jv_string("paths"), jv_object());
	}
	t = jv_object_set(t, jv_string("seq"), jv_number(++w->seq));
	/* the delta lists every difference: paths it no longer names are settled, unless in flight */
	jv old = jl_get(t, "paths");
	jv paths = jv_object();
	jv_object_foreach(old, k, p)
	{
		const char *st = jl_str(p, "st");
		if (jv_object_has(jv_copy(values), jv_copy(k)) || strcmp(st, ST_INFLIGHT) == 0) {
			paths = jv_object_set(paths, k, p);
		} else {
			/* settled without us (desired withdrawn, or reported caught up): its error goes */
			if (strcmp(st, ST_NEW) != 0)
				errors = jv_object_set(errors, jv_copy(k), jv_null());
			jv_free(k);
			jv_free(p);
		}
	}
	jv_free(old);
	size_t n = (size_t)jv_object_length(jv_copy(paths));
	jv_object_foreach(values, k, v)
	{
		const char *code;
		const char *bad_why = check_path(jv_string_value(k), v, &code);
		if (bad_why) {
			log_warn("%s: refusing desired %s: %s", thing, jv_string_value(k), bad_why);
			errors = jv_object_set(errors, jv_copy(k), error_record(code, bad_why));
			paths = jv_object_delete(paths, k);
			jv_free(v);
			continue;
		}
		jv p = jv_object_get(jv_copy(paths), jv_copy(k));
		if (!jv_is_valid(p)) {
			if (n >= w->o.max_paths) {
				log_warn("%s: more than %zu pending writes (-p): %s waits for a later delta", thing, w->o.max_paths,
				         jv_string_value(k));
				jv_free(k);
				jv_free(v);
				continue;
			}
			n++;
			p = jv_object_set(jv_object(), jv_string("st"), jv_string(ST_NEW));
		} else {
			const char *st = jl_str(p, "st");
			jv pv = jl_get(p, "v");
			int same = jv_equal(pv, jv_copy(v));
			/* a value the device refused is tried again only when it changes; one in flight is
			 * compared with what was written when the answer comes */
			if (!same && strcmp(st, ST_INFLIGHT) != 0 && strcmp(st, ST_OFFLINE) != 0)
				p = jv_object_set(p, jv_string("st"), jv_string(ST_NEW));
		}
		p = jv_object_set(p, jv_string("v"), v);
		paths = jv_object_set(paths, k, p);
	}
	jv_free(values);
	t = jv_object_set(t, jv_string("paths"), paths);
	if (jv_object_length(jl_get(t, "paths")) == 0) {
		jv_free(t);
		things_delete(w, jv_string(key));
	} else {
		things_set(w, key, t);
	}
	jv th = jv_object_set(jv_object(), jv_string("thing"), jv_string(thing));
	th = jv_object_set(th, jv_string("shadow"), jv_is_valid(shadow) ? shadow : jv_null());
	emit_errors(w, th, errors);
	evict_if_full(w, key);
	flush(w, key, 0, 0);
	free(key);
	jv_free(delta);
	return 0;
}

/* All things whose endpoint is ep. */
static void flush_ep(struct writer *w, const char *ep, int retry, int fresh_reg)
{
	/* flush may drop a thing (and its entry here): walk a copy */
	jv keys = jv_object_get(jv_copy(w->by_ep), jv_string(ep));
	if (!jv_is_valid(keys)) {
		jv_free(keys);
		return;
	}
	jv_object_foreach(keys, k, yes)
	{
		flush(w, jv_string_value(k), retry, fresh_reg);
		jv_free(k);
		jv_free(yes);
	}
	jv_free(keys);
}

static void on_event(struct writer *w, jv ev)
{
	const char *event = jl_str(ev, "event");
	const char *ep = jl_str(ev, "ep");
	const char *reg = jl_str(ev, "reg");
	if (!ep) {
		jv_free(ev);
		return;
	}
	if (strcmp(event, "register") == 0 || strcmp(event, "update") == 0 || strcmp(event, "wake") == 0) {
		jv known = jv_object_get(jv_copy(w->regs), jv_string(ep));
		int fresh = strcmp(event, "register") == 0 ||
		            (reg && (!jv_is_valid(known) || strcmp(jv_string_value(known), reg) != 0));
		jv_free(known);
		if (reg)
			w->regs = jv_object_set(w->regs, jv_string(ep), jv_string(reg));
		jv n = jv_object_get(jv_copy(w->talks), jv_string(ep));
		double talks = jv_get_kind(n) == JV_KIND_NUMBER ? jv_number_value(n) : 0;
		jv_free(n);
		w->talks = jv_object_set(w->talks, jv_string(ep), jv_number(talks + 1));
		flush_ep(w, ep, 1, fresh);
	} else if (strcmp(event, "deregister") == 0 || strcmp(event, "expire") == 0) {
		w->regs = jv_object_delete(w->regs, jv_string(ep));
	}
	jv_free(ev);
}

static void on_list(struct writer *w, jv msg)
{
	jv_free(w->regs);
	w->regs = jv_object();
	w->listed = 1;
	jv regs = jl_get(msg, "registrations");
	if (jv_get_kind(regs) == JV_KIND_ARRAY) {
		jv_array_foreach(regs, i, r)
		{
			const char *ep = jl_str(r, "ep");
			const char *reg = jl_str(r, "reg");
			if (ep && reg)
				w->regs = jv_object_set(w->regs, jv_string(ep), jv_string(reg));
			jv_free(r);
		}
	}
	jv_free(regs);
	jv_free(msg);
	jv keys = jv_keys(jv_copy(w->things));
	jv_array_foreach(keys, i, k)
	{
		flush(w, jv_string_value(k), 1, 0);
		jv_free(k);
	}
	jv_free(keys);
}

static void on_answer(struct writer *w, double id, jv msg)
{
	jv rec = jv_object_get(jv_copy(w->ids), id_key(id));
	if (!jv_is_valid(rec)) {
		jv_free(msg);
		return;
	}
	w->ids = jv_object_delete(w->ids, id_key(id));
	if (w->inflight)
		w->inflight--;
	const char *key = jl_str(rec, "key");
	const char *inst = jl_str(rec, "inst");
	jv values = jl_get(rec, "values");
	const char *code = jl_str(msg, "code");
	const char *err = jl_str(msg, "error");
	jv t = jv_object_get(jv_copy(w->things), jv_string(key));
	if (!jv_is_valid(t)) {
		/* cannot happen: a thing with a write in flight is never dropped */
		jv_free(values);
		jv_free(rec);
		jv_free(msg);
		return;
	}
	const char *ep = jl_str(t, "thing");
	jv paths = jl_get(t, "paths");
	int n = jv_object_length(jv_copy(values));
	if (code && code[0] == '2') {
		jv reported = jv_object();
		jv clear = jv_object();
		int again = 0;
		jv_object_foreach(values, k, v)
		{
			reported = lwm2m_nest_set(reported, jv_string_value(k), jv_copy(v));
			clear = jv_object_set(clear, jv_copy(k), jv_null());
			jv p = jv_object_get(jv_copy(paths), jv_copy(k));
			jv pv = jl_get(p, "v");
			if (jv_is_valid(p) && !jv_equal(pv, jv_copy(v))) {
				set_path(w, key, jv_string_value(k), jv_invalid(), ST_NEW, 0); /* desired moved on meanwhile */
				again = 1;
			} else if (jv_is_valid(p)) {
				drop_path(w, key, jv_string_value(k));
			}
			jv_free(p);
			jv_free(k);
			jv_free(v);
		}
		log_info("%s: wrote %d resource%s of %s (%s)", ep, n, n == 1 ? "" : "s", inst, code);
		reported = jv_object_set(reported, jv_string(WRITER_ERRORS_KEY), clear);
		emit(w, jv_copy(t), reported);
		if (again)
			flush(w, key, 0, 0);
	} else if (n > 1 && device_code(code)) {
		/* refused as a whole: find out which resource, writing them one by one (also on a 5.xx:
		 * one resource the device cannot take must not hold back the others) */
		log_info("%s: write of %s refused (%s%s%s); writing its %d resources one by one", ep, inst, code,
		         err ? " " : "", err ? err : "", n);
		const char *ep_c = ep;
		jv_object_foreach(values, k, v)
		{
			/* a path whose desired value went meanwhile (a later delta refused it or no longer
			 * names it) is not written again with the old value */
			if (!jv_object_has(jv_copy(paths), jv_copy(k))) {
				jv_free(k);
				jv_free(v);
				continue;
			}
			jv one = jv_object_set(jv_object(), jv_copy(k), v);
			set_path(w, key, jv_string_value(k), jv_invalid(), ST_NEW, 0);
			send_group(w, key, ep_c, inst, one);
			jv_free(k);
		}
	} else {
		int tr = transient_code(code);
		jv errors = jv_object();
		char msgbuf[256];
		snprintf(msgbuf, sizeof msgbuf, "%s", err ? err : code ? code : "no answer");
		jv_object_foreach(values, k, v)
		{
			char vb[128];
			log_warn("%s: write %s = %s failed: %s%s%s%s", ep, jv_string_value(k), show(jv_copy(v), vb, sizeof vb), code ? code : "?", err ? " " : "", err ? err : "",
			         tr ? " (retried when the device next talks)" : " (the desired value stays pending)");
			errors = jv_object_set(errors, jv_copy(k), error_record(code ? code : "error", msgbuf));
			jv p = jv_object_get(jv_copy(paths), jv_copy(k));
			if (jv_is_valid(p)) {
				jv pv = jl_get(p, "v");
				int moved = !jv_equal(pv, jv_copy(v));
				set_path(w, key, jv_string_value(k), jv_invalid(), moved ? ST_NEW : tr ? ST_TRANSIENT : ST_FAILED, 0);
			}
			jv_free(p);
			jv_free(k);
			jv_free(v);
		}
		if (code && strcmp(code, "unknown-endpoint") == 0)
			w->regs = jv_object_delete(w->regs, jv_string(ep));
		emit_errors(w, jv_copy(t), errors);
		/* the device talked while this write was out (it woke, say, while the request was still
		 * being retransmitted to it asleep): that was the moment to retry, so retry now */
		jv sent = jl_get(rec, "talks"), now = jv_object_get(jv_copy(w->talks), jv_string(ep));
		int talked = jv_get_kind(now) == JV_KIND_NUMBER &&
		             (jv_get_kind(sent) != JV_KIND_NUMBER || jv_number_value(now) > jv_number_value(sent));
		jv_free(sent);
		jv_free(now);
		flush(w, key, tr && talked, 0);
	}
	jv_free(paths);
	jv_free(values);
	jv_free(t);
	jv_free(rec);
	jv_free(msg);
}

void writer_control_line(struct writer *w, jv msg)
{
	if (jl_str(msg, "event")) {
		on_event(w, msg);
		return;
	}
	const char *op = jl_str(msg, "op");
	if (op && strcmp(op, "list") == 0) {
		on_list(w, msg);
		return;
	}
	jv idv = jl_get(msg, "id");
	if (jv_get_kind(idv) != JV_KIND_NUMBER) {
		const char *err = jl_str(msg, "error");
		if (err)
			log_warn("lwm2m-listen: %s", err);
		jv_free(idv);
		jv_free(msg);
		return;
	}
	double id = jv_number_value(idv);
	jv_free(idv);
	if (op && strcmp(op, "subscribe") == 0) {
		jv_free(msg);
		return;
	}
	on_answer(w, id, msg);
}

/* Writes in flight on a lost connection have an unknown outcome: write them again. */
static void requeue_inflight(struct writer *w)
{
	jv_object_foreach(w->things, k, t)
	{
		jv paths = jl_get(t, "paths");
		jv_object_foreach(paths, pk, p)
		{
			const char *st = jl_str(p, "st");
			if (strcmp(st, ST_INFLIGHT) == 0)
				set_path(w, jv_string_value(k), jv_string_value(pk), jv_invalid(), ST_NEW, 0);
			jv_free(pk);
			jv_free(p);
		}
		jv_free(paths);
		jv_free(k);
		jv_free(t);
	}
	jv_free(w->ids);
	w->ids = jv_object();
	w->inflight = 0;
}

void writer_connected(struct writer *w)
{
	requeue_inflight(w);
	w->listed = 0;
	ctl_send(w->ctl, jv_object_set(jv_object(), jv_string("op"), jv_string("subscribe")));
	ctl_send(w->ctl, jv_object_set(jv_object(), jv_string("op"), jv_string("list")));
}

void writer_disconnected(struct writer *w)
{
	requeue_inflight(w);
	jv_free(w->regs);
	w->regs = jv_object();
	w->listed = 0;
}
