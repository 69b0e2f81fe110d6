#include "observer.h"

#include "json_out.h"
#include "jsonl.h"
#include "log.h"
#include "lwm2m_path.h"
#include "lwm2m_shadow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-path states. A transient failure (no answer, cancelled, 5.xx) is retried the next time the
 * device talks (update, re-register); a definite one (4.xx) only on a new registration. */
#define ST_PENDING "pending"
#define ST_ACTIVE "active"
#define ST_FAILED "failed"
#define ST_TRANSIENT "transient"
#define ST_SKIPPED "skipped"

struct observer {
	struct ctlclient *ctl;
	const struct observe_config *cfg;
	const char *shadow;
	FILE *out;
	jv devs; /* ep -> {"reg", "objects", "lwm2m", "nocomp", "paths": {path: {"st", "id"}}} */
	jv ids;  /* "<id>" -> {"ep", "reg", "path" | "paths", "op"} */
	jv ep_ids; /* ep -> {"<id>": true}: the ids above by device, so a new registration forgets its
	            * device's requests without a walk over every device's */
	jv pend; /* ep -> {path: value}: the values of this round, one update per thing (observer_flush) */
	unsigned long updates, values;
	struct jbuf line; /* the update line being written */
	int composite; /* one Observe-Composite per LwM2M 1.1+ device */
};

struct observer *observer_new(struct ctlclient *ctl, const struct observe_config *cfg, const char *shadow,
                              FILE *out)
{
	struct observer *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->ctl = ctl;
	o->cfg = cfg;
	o->shadow = shadow;
	o->out = out;
	o->devs = jv_object();
	o->ids = jv_object();
	o->ep_ids = jv_object();
	o->pend = jv_object();
	return o;
}

void observer_free(struct observer *o)
{
	if (!o)
		return;
	jv_free(o->devs);
	jv_free(o->ids);
	jv_free(o->ep_ids);
	jv_free(o->pend);
	free(o->line.p);
	free(o);
}

void observer_set_composite(struct observer *o, int on)
{
	o->composite = on;
}

unsigned long observer_updates(const struct observer *o)
{
	return o->updates;
}

static jv id_key(double id)
{
	return jv_string_fmt("%.0f", id);
}

/* The request with this key (consumed) is answered for good or abandoned. */
static void forget_id(struct observer *o, jv key)
{
	jv rec = jv_object_get(jv_copy(o->ids), jv_copy(key));
	const char *ep = jv_is_valid(rec) ? jl_str(rec, "ep") : NULL;
	if (ep) {
		jv mine = jv_object_get(jv_copy(o->ep_ids), jv_string(ep));
		if (jv_is_valid(mine)) {
			mine = jv_object_delete(mine, jv_copy(key));
			o->ep_ids = jv_object_length(jv_copy(mine)) > 0 ? jv_object_set(o->ep_ids, jv_string(ep), mine)
			                                                : (jv_free(mine), jv_object_delete(o->ep_ids, jv_string(ep)));
		} else {
			jv_free(mine);
		}
	}
	jv_free(rec);
	o->ids = jv_object_delete(o->ids, key);
}

static void remember_id(struct observer *o, const char *ep, double id, jv rec)
{
	o->ids = jv_object_set(o->ids, id_key(id), rec);
	jv mine = jv_object_get(jv_copy(o->ep_ids), jv_string(ep));
	if (!jv_is_valid(mine)) {
		jv_free(mine);
		mine = jv_object();
	}
	o->ep_ids = jv_object_set(o->ep_ids, jv_string(ep), jv_object_set(mine, id_key(id), jv_true()));
}

static void set_path_state(struct observer *o, const char *ep, const char *path, const char *st, double id)
{
	jv dev = jv_object_get(jv_copy(o->devs), jv_string(ep));
	if (!jv_is_valid(dev))
		return;
	jv paths = jv_object_get(jv_copy(dev), jv_string("paths"));
	jv ps = jv_object();
	ps = jv_object_set(ps, jv_string("st"), jv_string(st));
	if (id > 0)
		ps = jv_object_set(ps, jv_string("id"), jv_number(id));
	paths = jv_object_set(paths, jv_string(path), ps);
	dev = jv_object_set(dev, jv_string("paths"), paths);
	o->devs = jv_object_set(o->devs, jv_string(ep), dev);
}

static const char *path_state(jv dev, const char *path, jv *hold)
{
	*hold = jv_object_get(jv_object_get(jv_copy(dev), jv_string("paths")), jv_string(path));
	if (jv_get_kind(*hold) != JV_KIND_OBJECT)
		return NULL;
	return jl_str(*hold, "st");
}

/* Does the device (its registered object instances) have what path names? */
static int device_has(jv objects, const char *path)
{
	struct lwm2m_path p;
	if (lwm2m_path_parse(path, &p) < 0 || p.len < 1)
		return 0;
	int found = 0;
	jv_array_foreach(objects, i, ob)
	{
		struct lwm2m_path q;
		if (!found && jv_get_kind(ob) == JV_KIND_STRING && lwm2m_path_parse(jv_string_value(ob), &q) == 0 && q.len >= 1 &&
		    q.id[0] == p.id[0]) {
			if (p.len == 1 || (q.len >= 2 && q.id[1] == p.id[1]))
				found = 1;
		}
		jv_free(ob);
	}
	return found;
}

/* path NULL: a composite command, whose "paths" come in extra */
static double send_cmd(struct observer *o, const char *op, const char *ep, const char *reg, const char *path, jv extra)
{
	jv cmd = jv_object();
	cmd = jv_object_set(cmd, jv_string("op"), jv_string(op));
	cmd = jv_object_set(cmd, jv_string("ep"), jv_string(ep));
	if (path)
		cmd = jv_object_set(cmd, jv_string("path"), jv_string(path));
	jv paths = jv_get_kind(extra) == JV_KIND_OBJECT ? jl_get(extra, "paths") : jv_invalid();
	if (jv_get_kind(extra) == JV_KIND_OBJECT) {
		jv_object_foreach(extra, k, v) cmd = jv_object_set(cmd, k, v);
	}
	jv_free(extra);
	double id = ctl_send(o->ctl, cmd);
	if (id > 0) {
		jv rec = jv_object();
		rec = jv_object_set(rec, jv_string("ep"), jv_string(ep));
		rec = jv_object_set(rec, jv_string("reg"), jv_string(reg));
		if (path)
			rec = jv_object_set(rec, jv_string("path"), jv_string(path));
		else
			rec = jv_object_set(rec, jv_string("paths"), jv_copy(paths));
		rec = jv_object_set(rec, jv_string("op"), jv_string(op));
		remember_id(o, ep, id, rec);
	}
	jv_free(paths);
	return id;
}

/* Observe-Composite for this device: asked for, LwM2M 1.1 or later, and not refused before. */
static int use_composite(const struct observer *o, jv dev)
{
	if (!o->composite)
		return 0;
	jv no = jl_get(dev, "nocomp");
	int refused = jv_get_kind(no) == JV_KIND_TRUE;
	jv_free(no);
	const char *v = jl_str(dev, "lwm2m");
	unsigned major = 0, minor = 0;
	if (refused || !v || sscanf(v, "%u.%u", &major, &minor) != 2)
		return 0;
	return major > 1 || (major == 1 && minor >= 1);
}

/* Observe every configured path the device has and is not observed yet. retry: also the paths
 * whose observation failed for a transient reason. */
static void observe_device(struct observer *o, const char *ep, int retry)
{
	jv dev = jv_object_get(jv_copy(o->devs), jv_string(ep));
	if (!jv_is_valid(dev))
		return;
	if (!ctl_connected(o->ctl)) {
		jv_free(dev);
		return; /* observer_connected lists the registrations again */
	}
	const struct observe_rule *rule = observe_config_rule(o->cfg, ep);
	jv objects = jl_get(dev, "objects");
	const char *reg = jl_str(dev, "reg");
	int comp = use_composite(o, dev);
	jv group = jv_array(); /* the paths of this device's Observe-Composite */
	for (size_t i = 0; i < rule->npaths; i++) {
		const char *path = rule->paths[i];
		jv hold;
		const char *st = path_state(dev, path, &hold);
		int go = !st || (retry && strcmp(st, ST_TRANSIENT) == 0);
		if (st && strcmp(st, ST_SKIPPED) == 0 && device_has(objects, path))
			go = 1; /* the object list changed */
		if (!go) {
			jv_free(hold);
			continue;
		}
		if (!device_has(objects, path)) {
			if (!st || strcmp(st, ST_SKIPPED) != 0)
				log_info("%s: not observing %s: the device did not register that object instance", ep, path);
			set_path_state(o, ep, path, ST_SKIPPED, 0);
			jv_free(hold);
			continue;
		}
		jv_free(hold);
		if (jv_get_kind(rule->attributes) == JV_KIND_OBJECT && jv_object_length(jv_copy(rule->attributes)) > 0) {
			jv extra = jv_object_set(jv_object(), jv_string("attributes"), jv_copy(rule->attributes));
			send_cmd(o, "write-attributes", ep, reg, path, extra);
		}
		if (comp) {
			group = jv_array_append(group, jv_string(path));
			continue;
		}
		double id = send_cmd(o, "observe", ep, reg, path, jv_null());
		if (id > 0) {
			log_debug("%s: observing %s", ep, path);
			set_path_state(o, ep, path, ST_PENDING, id);
		}
	}
	if (jv_array_length(jv_copy(group)) > 0) {
		/* still one Observe-Composite per device: end the ones made before and take their paths in */
		jv old = jv_object(), wanted = jv_object();
		jv_array_foreach(group, i, p) wanted = jv_object_set(wanted, p, jv_true());
		jv states = jl_get(dev, "paths");
		jv_object_foreach(states, k, v)
		{
			const char *st = jl_str(v, "st");
			double oid = jl_num(v, "id", 0);
			if (st && oid > 0 && (strcmp(st, ST_ACTIVE) == 0 || strcmp(st, ST_PENDING) == 0)) {
				wanted = jv_object_set(wanted, jv_copy(k), jv_true());
				old = jv_object_set(old, id_key(oid), jv_true());
			}
			jv_free(k);
			jv_free(v);
		}
		jv_free(states);
		jv_object_foreach(old, k, v)
		{
			jv orec = jv_object_get(jv_copy(o->ids), jv_copy(k));
			jv ops = jv_is_valid(orec) ? jl_get(orec, "paths") : jv_invalid();
			if (jv_get_kind(ops) == JV_KIND_ARRAY)
				send_cmd(o, "cancel-observe-composite", ep, reg, NULL,
				         jv_object_set(jv_object(), jv_string("paths"), jv_copy(ops)));
			jv_free(ops);
			jv_free(orec);
			forget_id(o, k);
			jv_free(v);
		}
		jv_free(old);
		/* in the configured order */
		jv_free(group);
		group = jv_array();
		for (size_t i = 0; i < rule->npaths; i++)
			if (jv_object_has(jv_copy(wanted), jv_string(rule->paths[i])))
				group = jv_array_append(group, jv_string(rule->paths[i]));
		jv_free(wanted);
		double id = send_cmd(o, "observe-composite", ep, reg, NULL,
		                     jv_object_set(jv_object(), jv_string("paths"), jv_copy(group)));
		if (id > 0) {
			log_debug("%s: observing %d paths with one Observe-Composite", ep, jv_array_length(jv_copy(group)));
			jv_array_foreach(group, i, p)
			{
				set_path_state(o, ep, jv_string_value(p), ST_PENDING, id);
				jv_free(p);
			}
		}
	}
	jv_free(group);
	jv_free(objects);
	jv_free(dev);
}

/* Paths whose object instance went away with an Update: cancel their observations. */
static void drop_vanished(struct observer *o, const char *ep)
{
	jv dev = jv_object_get(jv_copy(o->devs), jv_string(ep));
	jv objects = jl_get(dev, "objects");
	jv paths = jl_get(dev, "paths");
	const char *reg = jl_str(dev, "reg");
	jv_object_foreach(paths, k, snap)
	{
		/* the state now: ending an Observe-Composite below forgets the states of its group */
		jv_free(snap);
		jv cur = jv_object_get(jv_object_get(jv_object_get(jv_copy(o->devs), jv_string(ep)), jv_string("paths")),
		                       jv_copy(k));
		jv v = jv_get_kind(cur) == JV_KIND_OBJECT ? cur : (jv_free(cur), jv_object());
		const char *st = jl_str(v, "st");
		const char *path = jv_string_value(k);
		if (st && (strcmp(st, ST_ACTIVE) == 0 || strcmp(st, ST_PENDING) == 0) && !device_has(objects, path)) {
			log_info("%s: %s is gone from the device's objects; cancelling its observation", ep, path);
			double old = jl_num(v, "id", 0);
			jv rec = old > 0 ? jv_object_get(jv_copy(o->ids), id_key(old)) : jv_invalid();
			jv group = jv_is_valid(rec) ? jl_get(rec, "paths") : jv_invalid();
			if (jv_get_kind(group) == JV_KIND_ARRAY) {
				/* one path of an Observe-Composite: end it; observe_device observes the rest again */
				send_cmd(o, "cancel-observe-composite", ep, reg, NULL,
				         jv_object_set(jv_object(), jv_string("paths"), jv_copy(group)));
				jv_array_foreach(group, i, p)
				{
					jv d = jv_object_get(jv_copy(o->devs), jv_string(ep));
					jv ps = jv_object_delete(jl_get(d, "paths"), p);
					o->devs = jv_object_set(o->devs, jv_string(ep), jv_object_set(d, jv_string("paths"), ps));
				}
			} else {
				send_cmd(o, "cancel-observe", ep, reg, path, jv_null());
			}
			jv_free(group);
			jv_free(rec);
			if (old > 0)
				forget_id(o, id_key(old));
			set_path_state(o, ep, path, ST_SKIPPED, 0);
		}
		jv_free(k);
		jv_free(v);
	}
	jv_free(paths);
	jv_free(objects);
	jv_free(dev);
}

static void forget_device(struct observer *o, const char *ep)
{
	o->devs = jv_object_delete(o->devs, jv_string(ep));
	jv mine = jv_object_get(jv_copy(o->ep_ids), jv_string(ep));
	if (jv_is_valid(mine)) {
		jv_object_foreach(mine, k, v)
		{
			o->ids = jv_object_delete(o->ids, k);
			jv_free(v);
		}
	}
	jv_free(mine);
	o->ep_ids = jv_object_delete(o->ep_ids, jv_string(ep));
}

/* ev is borrowed, not consumed */
static void new_registration(struct observer *o, jv ev)
{
	const char *ep = jl_str(ev, "ep");
	forget_device(o, ep);
	jv dev = jv_object();
	dev = jv_object_set(dev, jv_string("reg"), jl_get(ev, "reg"));
	jv objects = jl_get(ev, "objects");
	dev = jv_object_set(dev, jv_string("objects"), jv_get_kind(objects) == JV_KIND_ARRAY ? objects : (jv_free(objects), jv_array()));
	jv ver = jl_get(ev, "lwm2m");
	dev = jv_object_set(dev, jv_string("lwm2m"), jv_get_kind(ver) == JV_KIND_STRING ? ver : (jv_free(ver), jv_null()));
	dev = jv_object_set(dev, jv_string("paths"), jv_object());
	o->devs = jv_object_set(o->devs, jv_string(ep), dev);
	observe_device(o, ep, 0);
}

void observer_event(struct observer *o, jv ev)
{
	const char *event = jl_str(ev, "event");
	const char *ep = jl_str(ev, "ep");
	const char *reg = jl_str(ev, "reg");
	if (!event || !ep) {
		jv_free(ev);
		return;
	}
	if (!reg && (strcmp(event, "register") == 0 || strcmp(event, "update") == 0)) {
		/* every command and answer is tied to the registration id: nothing to observe under */
		log_warn("%s: %s event without a registration id (\"reg\"), ignored", ep, event);
		jv_free(ev);
		return;
	}
	jv dev = jv_object_get(jv_copy(o->devs), jv_string(ep));
	const char *known_reg = jv_is_valid(dev) ? jl_str(dev, "reg") : NULL;
	int same = known_reg && reg && strcmp(known_reg, reg) == 0;
	if (strcmp(event, "register") == 0) {
		if (same) {
			/* the registration list answered first (we connected while its event waited in the
			 * pipe): observing again would give the device a second observation per path */
			log_info("%s: registered (%s), already observed from the registration list", ep, reg);
		} else {
			log_info("%s: registered (%s), observing", ep, reg ? reg : "?");
			new_registration(o, ev);
		}
	} else if (strcmp(event, "update") == 0) {
		if (!same) {
			/* an update for a registration we never saw (we started later): treat it as new */
			new_registration(o, ev);
		} else {
			jv changed = jl_get(ev, "changed");
			int objs = 0;
			if (jv_get_kind(changed) == JV_KIND_ARRAY) {
				jv_array_foreach(changed, i, c)
				{
					if (jv_get_kind(c) == JV_KIND_STRING && strcmp(jv_string_value(c), "objects") == 0)
						objs = 1;
					jv_free(c);
				}
			}
			jv_free(changed);
			if (objs) {
				jv objects = jl_get(ev, "objects");
				if (jv_get_kind(objects) == JV_KIND_ARRAY) {
					jv d = jv_object_get(jv_copy(o->devs), jv_string(ep));
					d = jv_object_set(d, jv_string("objects"), objects);
					o->devs = jv_object_set(o->devs, jv_string(ep), d);
				} else {
					jv_free(objects);
				}
				log_info("%s: object list changed", ep);
				drop_vanished(o, ep);
			}
			observe_device(o, ep, 1);
		}
	} else if (strcmp(event, "deregister") == 0 || strcmp(event, "expire") == 0) {
		if (jv_is_valid(dev) && (!reg || same)) {
			log_info("%s: %s, its observations end", ep, event);
			forget_device(o, ep);
		}
	} else if (strcmp(event, "wake") == 0) {
		if (same)
			observe_device(o, ep, 1);
	}
	jv_free(dev);
	jv_free(ev);
}

static int transient_code(const char *code)
{
	return !code || code[0] == '5' || strcmp(code, "timeout") == 0 || strcmp(code, "cancelled") == 0 ||
	       strcmp(code, "queue-full") == 0 || strcmp(code, "queue-expired") == 0 || strcmp(code, "send-failed") == 0 ||
	       strcmp(code, "reset") == 0;
}

/* The usual notification: one resource. Its update line written straight, the same text as
 * the general way below gives. 1 if done. */
static int print_one(struct observer *o, const char *ep, jv values)
{
	int it = jv_object_iter(values);
	if (!jv_object_iter_valid(values, it) || jv_object_iter_valid(values, jv_object_iter_next(values, it)))
		return 0;
	jv key = jv_object_iter_key(values, it);
	struct lwm2m_path p;
	int ok = lwm2m_path_parse(jv_string_value(key), &p) == 0 && p.len == 3;
	jv_free(key);
	if (!ok)
		return 0;
	jv val = jv_object_iter_value(values, it);
	struct jbuf *b = &o->line;
	char ids[64];
	b->len = 0;
	b->failed = 0;
	jbuf_add(b, "{\"thing\":", 9);
	json_out_string(b, ep, strlen(ep));
	if (o->shadow) {
		jbuf_add(b, ",\"shadow\":", 10);
		json_out_string(b, o->shadow, strlen(o->shadow));
	}
	int n = snprintf(ids, sizeof ids, ",\"state\":{\"reported\":{\"%u\":{\"%u\":{\"%u\":", (unsigned)p.id[0],
	                 (unsigned)p.id[1], (unsigned)p.id[2]);
	jbuf_add(b, ids, (size_t)n);
	json_out_append(b, val);
	jbuf_add(b, "}}}}}\n", 6);
	jv_free(val);
	if (b->failed)
		die(EXIT_TEMPORARY, "out of memory");
	if (jsonl_put_text(o->out, b->p, b->len) < 0)
		die_sys(EXIT_TEMPORARY, "unable to write to stdout");
	o->updates++;
	return 1;
}

static void print_values(struct observer *o, const char *ep, jv values)
{
	if (jv_get_kind(values) == JV_KIND_OBJECT && print_one(o, ep, values)) {
		jv_free(values);
		return;
	}
	jv nested = lwm2m_values_nest(values);
	jv_free(values);
	if (jv_object_length(jv_copy(nested)) == 0) {
		jv_free(nested);
		return;
	}
	jv up = jv_object();
	up = jv_object_set(up, jv_string("thing"), jv_string(ep));
	if (o->shadow)
		up = jv_object_set(up, jv_string("shadow"), jv_string(o->shadow));
	up = jv_object_set(up, jv_string("state"), jv_object_set(jv_object(), jv_string("reported"), nested));
	if (jsonl_put(o->out, up) < 0)
		die_sys(EXIT_TEMPORARY, "unable to write to stdout");
	o->updates++;
}

/* A thing's values wait for the end of the round (observer_flush): what several notifications of
 * one thing bring in a round becomes one update, the later value of a resource winning, as it
 * would in the shadow. Under load a round holds more lines, so the store gets fewer, fuller
 * updates instead of falling behind. */
static void queue_values(struct observer *o, const char *ep, jv values)
{
	if (jv_get_kind(values) != JV_KIND_OBJECT) {
		print_values(o, ep, values);
		return;
	}
	o->values++;
	jv key = jv_string(ep);
	jv old = jv_object_get(jv_copy(o->pend), jv_copy(key));
	if (jv_is_valid(old))
		values = jv_object_merge(old, values);
	else
		jv_free(old);
	o->pend = jv_object_set(o->pend, key, values);
}

void observer_flush(struct observer *o)
{
	if (jv_object_length(jv_copy(o->pend)) == 0)
		return;
	jv pend = o->pend;
	o->pend = jv_object();
	jv_object_foreach(pend, k, v)
	{
		print_values(o, jv_string_value(k), v);
		jv_free(k);
	}
	jv_free(pend);
}

unsigned long observer_values(const struct observer *o)
{
	return o->values;
}

static void set_group_state(struct observer *o, const char *ep, jv paths, const char *st, double id)
{
	jv_array_foreach(paths, i, p)
	{
		if (jv_get_kind(p) == JV_KIND_STRING)
			set_path_state(o, ep, jv_string_value(p), st, id);
		jv_free(p);
	}
}

/* A first answer "timeout" to an Observe-Composite of this device: how many so far (1, 2...). */
static int composite_timeouts(struct observer *o, const char *ep)
{
	jv dev = jv_object_get(jv_copy(o->devs), jv_string(ep));
	if (!jv_is_valid(dev)) {
		jv_free(dev);
		return 0;
	}
	jv n = jl_get(dev, "comp_timeouts");
	int k = (jv_get_kind(n) == JV_KIND_NUMBER ? (int)jv_number_value(n) : 0) + 1;
	jv_free(n);
	dev = jv_object_set(dev, jv_string("comp_timeouts"), jv_number(k));
	o->devs = jv_object_set(o->devs, jv_string(ep), dev);
	return k;
}

/* An answer or notification of an Observe-Composite: its values come as one update. A 4.xx first
 * answer (the device has no composite operations, or not for these paths) turns this device to
 * per-path Observe for the rest of its registration; so does a second timeout, the retry having
 * gone when the device talked: Wakaama's client (fc4c431) registers as 1.1 but drops FETCH
 * without a word. */
static void composite_answer(struct observer *o, double id, jv rec, jv msg)
{
	const char *ep = jl_str(rec, "ep");
	const char *op = jl_str(msg, "op");
	const char *code = jl_str(msg, "code");
	const char *err = jl_str(msg, "error");
	jv paths = jl_get(rec, "paths");
	int first = op && strcmp(op, "observe-composite") == 0;
	if (code && code[0] == '2') {
		if (first)
			set_group_state(o, ep, paths, ST_ACTIVE, id);
		queue_values(o, ep, jl_get(msg, "values"));
	} else if (first && code &&
	           (code[0] == '4' || strcmp(code, "not-supported") == 0 ||
	            (strcmp(code, "timeout") == 0 && composite_timeouts(o, ep) >= 2))) {
		if (code[0] == '4' || strcmp(code, "not-supported") == 0)
			log_info("%s: Observe-Composite refused (%s%s%s); observing path by path", ep, code, err ? " " : "",
			         err ? err : "");
		else
			log_info("%s: Observe-Composite unanswered twice (%s); observing path by path", ep, code);
		forget_id(o, id_key(id));
		jv dev = jv_object_get(jv_copy(o->devs), jv_string(ep));
		if (jv_is_valid(dev)) {
			jv ps = jl_get(dev, "paths");
			jv_array_foreach(paths, i, p) ps = jv_object_delete(ps, p);
			dev = jv_object_set(dev, jv_string("paths"), ps);
			dev = jv_object_set(dev, jv_string("nocomp"), jv_true());
			o->devs = jv_object_set(o->devs, jv_string(ep), dev);
			observe_device(o, ep, 0);
		} else {
			jv_free(dev);
		}
	} else {
		int tr = transient_code(code);
		if (first || strcmp(code ? code : "", "cancelled") != 0 || log_level >= LOG_LVL_INFO)
			log_msg(first && !tr ? LOG_LVL_WARN : LOG_LVL_INFO, "%s: %s: %s%s%s%s", ep,
			        first ? "Observe-Composite" : "Observe-Composite ended", code ? code : "?", err ? " " : "",
			        err ? err : "", tr ? " (retried when the device next talks)" : "");
		set_group_state(o, ep, paths, tr ? ST_TRANSIENT : ST_FAILED, 0);
		forget_id(o, id_key(id));
	}
	jv_free(paths);
	jv_free(rec);
	jv_free(msg);
}

static void list_answer(struct observer *o, jv msg)
{
	jv regs = jl_get(msg, "registrations");
	if (jv_get_kind(regs) == JV_KIND_ARRAY) {
		jv_array_foreach(regs, i, r)
		{
			const char *ep = jl_str(r, "ep");
			const char *reg = jl_str(r, "reg");
			jv dev = ep ? jv_object_get(jv_copy(o->devs), jv_string(ep)) : jv_invalid();
			const char *kr = jv_is_valid(dev) ? jl_str(dev, "reg") : NULL;
			if (ep && reg && (!kr || strcmp(kr, reg) != 0)) {
				log_info("%s: registered (%s, from the registration list), observing", ep, reg);
				new_registration(o, r); /* borrows r */
			}
			jv_free(dev);
			jv_free(r);
		}
	}
	jv_free(regs);
	jv_free(msg);
}

void observer_control_line(struct observer *o, jv msg)
{
	if (jl_str(msg, "event")) {
		observer_event(o, msg);
		return;
	}
	const char *op = jl_str(msg, "op");
	if (op && strcmp(op, "list") == 0) {
		list_answer(o, msg);
		return;
	}
	jv idv = jl_get(msg, "id");
	if (jv_get_kind(idv) != JV_KIND_NUMBER) {
		if (op && strcmp(op, "subscribe") == 0) {
			jv_free(idv);
			jv_free(msg);
			return;
		}
		const char *err = jl_str(msg, "error");
		log_warn("lwm2m-listen: %s", err ? err : "an answer without an id");
		jv_free(idv);
		jv_free(msg);
		return;
	}
	double id = jv_number_value(idv);
	jv_free(idv);
	jv rec = jv_object_get(jv_copy(o->ids), id_key(id));
	if (!jv_is_valid(rec)) {
		jv_free(rec);
		jv_free(msg); /* an answer for a registration that is gone, or a subscribe */
		return;
	}
	const char *ep = jl_str(rec, "ep");
	const char *path = jl_str(rec, "path");
	const char *rop = jl_str(rec, "op");
	const char *code = jl_str(msg, "code");
	const char *err = jl_str(msg, "error");
	int ok = code && code[0] == '2';
	if (strcmp(rop, "observe-composite") == 0) {
		composite_answer(o, id, rec, msg);
		return;
	}
	if (!path)
		path = "(composite)";
	if (strcmp(rop, "observe") != 0) {
		if (!ok)
			log_msg(strcmp(rop, "cancel-observe") == 0 ? LOG_LVL_DEBUG : LOG_LVL_WARN, "%s: %s %s: %s%s%s", ep, rop,
			        path, code ? code : "?", err ? " " : "", err ? err : "");
		forget_id(o, id_key(id));
		jv_free(rec);
		jv_free(msg);
		return;
	}
	if (ok) {
		if (op && strcmp(op, "observe") == 0)
			set_path_state(o, ep, path, ST_ACTIVE, id);
		queue_values(o, ep, jl_get(msg, "values"));
	} else {
		int first = op && strcmp(op, "observe") == 0;
		int tr = transient_code(code);
		if (first || strcmp(code ? code : "", "cancelled") != 0 || log_level >= LOG_LVL_INFO)
			log_msg(first && !tr ? LOG_LVL_WARN : LOG_LVL_INFO, "%s: %s %s: %s%s%s%s", ep,
			        first ? "observe" : "observation of", path, code ? code : "?", err ? " " : "", err ? err : "",
			        tr ? " (retried when the device next talks)" : "");
		set_path_state(o, ep, path, tr ? ST_TRANSIENT : ST_FAILED, 0);
		forget_id(o, id_key(id));
	}
	jv_free(rec);
	jv_free(msg);
}

void observer_connected(struct observer *o, int subscribe)
{
	jv_free(o->devs);
	jv_free(o->ids);
	jv_free(o->ep_ids);
	o->devs = jv_object();
	o->ids = jv_object();
	o->ep_ids = jv_object();
	if (subscribe)
		ctl_send(o->ctl, jv_object_set(jv_object(), jv_string("op"), jv_string("subscribe")));
	ctl_send(o->ctl, jv_object_set(jv_object(), jv_string("op"), jv_string("list")));
}

void observer_disconnected(struct observer *o)
{
	jv_free(o->devs);
	jv_free(o->ids);
	jv_free(o->ep_ids);
	o->devs = jv_object();
	o->ids = jv_object();
	o->ep_ids = jv_object();
}
