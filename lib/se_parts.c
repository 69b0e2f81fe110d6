#include "se_parts.h"

#include "hex.h"
#include "jsonl.h"
#include "linereader.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void se_derive(const uint8_t parent[32], const uint8_t sn[9], uint8_t k[32])
{
	/* the message of the ATECC608 DeriveKey command (opcode 1C, mode 04, target slot 0000)
	 * with TempKey holding the serial number */
	uint8_t m[96] = {0};
	memcpy(m, parent, 32);
	m[32] = 0x1c;
	m[33] = 0x04;
	m[36] = sn[8];
	m[37] = sn[0];
	m[38] = sn[1];
	memcpy(m + 64, sn, 9);
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, sizeof m, m);
	sha256_digest(&c, 32, k);
	memset(m, 0, sizeof m);
	memset(&c, 0, sizeof c);
}

void se_root_keys(const uint8_t parent[32], const uint8_t sn[9], bool mac11, struct js_root_keys *out)
{
	uint8_t k[32];
	se_derive(parent, sn, k);
	memcpy(out->app_key, k + 16, 16);
	if (mac11)
		memcpy(out->nwk_key, k, 16);
	else
		memcpy(out->nwk_key, k + 16, 16);
	out->has_nwk_key = mac11;
	memset(k, 0, sizeof k);
}

/* Read path line by line, calling fn for each JSON object; malformed lines are counted. */
static int each_line(const char *path, int (*fn)(void *, jv, unsigned long), void *arg, int *rejected, char *err,
                     size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "unable to open %s: %s", path, strerror(errno));
		return -1;
	}
	struct linereader r;
	lr_init(&r, fd, LR_DEFAULT_MAX);
	char *line;
	size_t len;
	int rc, out = 0;
	while ((rc = lr_getline(&r, &line, &len)) > 0) {
		if (rc == LR_TOOLONG) {
			log_error("%s:%lu: line too long", path, r.lineno);
			(*rejected)++;
			continue;
		}
		/* blank lines and # comments, as the ljs-join registry allows */
		size_t skip = strspn(line, " \t\r");
		if (skip == len || line[skip] == '#')
			continue;
		jv rec = jsonl_parse_object(line, len);
		if (!jv_is_valid(rec)) {
			jv msg = jv_invalid_get_msg(rec);
			log_error("%s:%lu: %s", path, r.lineno, jv_string_value(msg));
			jv_free(msg);
			(*rejected)++;
			continue;
		}
		if ((out = fn(arg, rec, r.lineno)) < 0)
			break;
	}
	if (rc < 0) {
		snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
		out = -1;
	}
	memset(r.buf, 0, r.cap);
	lr_free(&r);
	close(fd);
	return out;
}

struct parts_arg {
	struct se_table *t;
	struct kms *k;
	const char *key_id;
	const struct kms_field_opts *o;
	const char *path;
	int *rejected;
	char *err;
	size_t errlen;
};

static struct se_part *find_part(const struct se_table *t, const char *pn)
{
	for (size_t i = 0; i < t->nparts; i++)
		if (strcmp(t->parts[i].part_number, pn) == 0)
			return &t->parts[i];
	return NULL;
}

static int part_line(void *arg, jv rec, unsigned long lineno)
{
	struct parts_arg *a = arg;
	const struct kms_field_opts *o = a->o;
	const char *field = o->nfields ? o->fields[0] : "psk_root_keys";
	char cname[256], why[300];
	snprintf(cname, sizeof cname, "%s%s", field, o->suffix);
	const char *pn = jl_str(rec, "part_number"), *ct = jl_str(rec, cname);
	int rc = 0;
	uint8_t *pt = NULL;
	size_t n = 0;
	jv ctx = jv_null();
	if (!pn || !*pn || !ct) {
		log_error("%s:%lu: a part needs part_number and %s strings", a->path, lineno, cname);
		(*a->rejected)++;
		goto out;
	}
	if (find_part(a->t, pn)) {
		log_error("%s:%lu: part_number \"%s\" given twice; the first one stays", a->path, lineno, pn);
		(*a->rejected)++;
		goto out;
	}
	ctx = kms_record_context(o, rec);
	if (!jv_is_valid(ctx)) {
		jv msg = jv_invalid_get_msg(ctx);
		ctx = jv_null();
		log_error("%s:%lu: part \"%s\": %s", a->path, lineno, pn, jv_string_value(msg));
		jv_free(msg);
		(*a->rejected)++;
		goto out;
	}
	int kr = kms_decrypt(a->k, a->key_id, ct, ctx, &pt, &n, why, sizeof why);
	if (kr == KMS_TEMPORARY) {
		snprintf(a->err, a->errlen, "%s:%lu: part \"%s\": %s", a->path, lineno, pn, why);
		rc = -1;
		goto out;
	}
	if (kr != KMS_OK) {
		log_error("%s:%lu: part \"%s\": %s: %s", a->path, lineno, pn, cname, why);
		(*a->rejected)++;
		goto out;
	}
	struct se_part p = {0};
	if (n == 32) {
		memcpy(p.parent, pt, 32);
	} else if (n == 64) {
		char hex[65];
		memcpy(hex, pt, 64);
		hex[64] = 0;
		int bad = hex_decode_exact(hex, p.parent, 32);
		memset(hex, 0, sizeof hex);
		if (bad < 0)
			n = 0;
	}
	if (n != 32 && n != 64) {
		log_error("%s:%lu: part \"%s\": the decrypted key is not 32 bytes (raw or in hex)", a->path, lineno, pn);
		(*a->rejected)++;
		goto out;
	}
	struct se_part *np = realloc(a->t->parts, (a->t->nparts + 1) * sizeof *np);
	if (np)
		a->t->parts = np;
	if (!np || !(p.part_number = strdup(pn))) {
		memset(&p, 0, sizeof p);
		snprintf(a->err, a->errlen, "out of memory");
		rc = -1;
		goto out;
	}
	a->t->parts[a->t->nparts++] = p;
	memset(&p, 0, sizeof p);
out:
	if (pt) {
		memset(pt, 0, n);
		free(pt);
	}
	jv_free(ctx);
	jv_free(rec);
	return rc;
}

int se_parts_load(struct se_table *t, const char *path, struct kms *k, const char *key_id,
                  const struct kms_field_opts *o, int *rejected, char *err, size_t errlen)
{
	struct parts_arg a = {t, k, key_id, o, path, rejected, err, errlen};
	return each_line(path, part_line, &a, rejected, err, errlen);
}

static const char *str2(jv rec, const char *a, const char *b)
{
	const char *s = jl_str(rec, a);
	return s ? s : jl_str(rec, b);
}

struct dev_arg {
	struct se_table *t;
	const char *path;
	int *rejected;
	char *err;
	size_t errlen;
};

static int device_line(void *arg, jv rec, unsigned long lineno)
{
	struct dev_arg *a = arg;
	const char *pn = jl_str(rec, "part_number");
	if (!jl_has(rec, "part_number")) {
		jv_free(rec);
		return 0;
	}
	struct se_device d = {0};
	const char *dev = str2(rec, "DevEUI", "dev_eui"), *join = str2(rec, "JoinEUI", "join_eui");
	const char *sn = str2(rec, "serial_number", "SerialNumber"), *mac = str2(rec, "MACVersion", "mac_version");
	const char *why = NULL;
	if (!pn || !*pn)
		why = "part_number is not a string";
	else if (!dev || hex_decode_exact(dev, d.dev_eui, 8) < 0)
		why = "DevEUI is missing or not 8 bytes of hex";
	else if (join && hex_decode_exact(join, d.join_eui, 8) < 0)
		why = "JoinEUI is not 8 bytes of hex";
	else if (!sn || hex_decode_exact(sn, d.sn, 9) < 0)
		why = "serial_number is missing or not 9 bytes of hex";
	else if (mac && strncmp(mac, "1.", 2) != 0)
		why = "MACVersion is not 1.x";
	if (why) {
		log_error("%s:%lu: secure-element device: %s", a->path, lineno, why);
		(*a->rejected)++;
		jv_free(rec);
		return 0;
	}
	d.has_join_eui = join != NULL;
	d.mac11 = mac && strncmp(mac, "1.1", 3) == 0;
	for (size_t i = 0; i < a->t->ndevs; i++)
		if (memcmp(a->t->devs[i].dev_eui, d.dev_eui, 8) == 0) {
			log_error("%s:%lu: DevEUI %s given twice; the first one stays", a->path, lineno, dev);
			(*a->rejected)++;
			jv_free(rec);
			return 0;
		}
	struct se_device *nd = realloc(a->t->devs, (a->t->ndevs + 1) * sizeof *nd);
	if (nd)
		a->t->devs = nd;
	if (!nd || !(d.part_number = strdup(pn))) {
		snprintf(a->err, a->errlen, "out of memory");
		jv_free(rec);
		return -1;
	}
	a->t->devs[a->t->ndevs++] = d;
	jv_free(rec);
	return 0;
}

int se_devices_load(struct se_table *t, const char *path, int *rejected, char *err, size_t errlen)
{
	struct dev_arg a = {t, path, rejected, err, errlen};
	return each_line(path, device_line, &a, rejected, err, errlen);
}

int se_root_key_lookup(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8], struct js_root_keys *out,
                       char *err, size_t errlen)
{
	const struct se_table *t = ctx;
	char hex[17];
	hex_encode(dev_eui, 8, hex);
	for (size_t i = 0; i < t->ndevs; i++) {
		const struct se_device *d = &t->devs[i];
		if (memcmp(d->dev_eui, dev_eui, 8) != 0)
			continue;
		if (d->has_join_eui && join_eui && memcmp(d->join_eui, join_eui, 8) != 0) {
			snprintf(err, errlen, "DevEUI %s is provisioned for another JoinEUI", hex);
			return -1;
		}
		const struct se_part *p = find_part(t, d->part_number);
		if (!p) {
			snprintf(err, errlen, "DevEUI %s: part \"%s\" is not in the parts table (or did not decrypt)", hex,
			         d->part_number);
			return -1;
		}
		se_root_keys(p->parent, d->sn, d->mac11, out);
		return 0;
	}
	snprintf(err, errlen, "DevEUI %s is not a secure-element device", hex);
	return -1;
}

void se_table_free(struct se_table *t)
{
	for (size_t i = 0; i < t->nparts; i++) {
		memset(t->parts[i].parent, 0, 32);
		free(t->parts[i].part_number);
	}
	for (size_t i = 0; i < t->ndevs; i++)
		free(t->devs[i].part_number);
	free(t->parts);
	free(t->devs);
	memset(t, 0, sizeof *t);
}
