/* The credentials file and the identity/endpoint binding (see lwm2m_security.h). */
#include "lwm2m_security.h"
#include "hex.h"
#include "jsonl.h"
#include "lwm2m_registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void lwm2m_security_free(struct lwm2m_security *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].ep);
		free(s->v[i].identity);
	}
	free(s->v);
	free(s);
}

const struct lwm2m_cred *lwm2m_security_by_identity(const struct lwm2m_security *s, const uint8_t *id, size_t len)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strlen(s->v[i].identity) == len && memcmp(s->v[i].identity, id, len) == 0)
			return &s->v[i];
	return NULL;
}

const struct lwm2m_cred *lwm2m_security_by_ep(const struct lwm2m_security *s, const char *ep)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->v[i].ep, ep) == 0)
			return &s->v[i];
	return NULL;
}

/* One entry; a sentence in err when it is wrong. */
static int add(struct lwm2m_security *s, const char *ep, const char *id, const char *key, char *err, size_t errlen)
{
	if (!ep || !*ep || strlen(ep) > LWM2M_EP_MAX) {
		snprintf(err, errlen, "missing or bad \"ep\"");
		return -1;
	}
	if (!id || !*id || !key) {
		snprintf(err, errlen, "endpoint %.100s: want \"psk_identity\" and \"psk_key\"", ep);
		return -1;
	}
	if (lwm2m_security_by_ep(s, ep)) {
		snprintf(err, errlen, "endpoint %.100s listed twice", ep);
		return -1;
	}
	if (lwm2m_security_by_identity(s, (const uint8_t *)id, strlen(id))) {
		snprintf(err, errlen, "PSK identity %.100s listed twice", id);
		return -1;
	}
	struct lwm2m_cred c = {0};
	long n = hex_decode(key, c.key, sizeof c.key);
	if (n <= 0) {
		snprintf(err, errlen, "endpoint %.100s: psk_key is not 1 to %d bytes of hex", ep, LWM2M_PSK_MAX);
		return -1;
	}
	c.bin.length = (size_t)n;
	struct lwm2m_cred *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
	if (!nv) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->v = nv;
	c.ep = strdup(ep);
	c.identity = strdup(id);
	if (!c.ep || !c.identity) {
		free(c.ep);
		free(c.identity);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->v[s->n++] = c;
	return 0;
}

static int load_jsonl(struct lwm2m_security *s, FILE *f, const char *path, char *err, size_t errlen)
{
	char *line = NULL, msg[200];
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int rc = 0;
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		size_t i = 0;
		while (i < (size_t)len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r'))
			i++;
		if (i == (size_t)len || line[i] == '#')
			continue;
		jv o = jsonl_parse_object(line, (size_t)len);
		if (!jv_is_valid(o)) {
			jv m = jv_invalid_get_msg(o);
			snprintf(err, errlen, "%s:%lu: %s", path, lineno,
			         jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "not a JSON object");
			jv_free(m);
			rc = -1;
			break;
		}
		if (add(s, jl_str(o, "ep"), jl_str(o, "psk_identity"), jl_str(o, "psk_key"), msg, sizeof msg) < 0) {
			snprintf(err, errlen, "%s:%lu: %s", path, lineno, msg);
			rc = -1;
		}
		jv_free(o);
	}
	free(line);
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

/* A sequence of flat mappings of scalars. */
static int load_yaml(struct lwm2m_security *s, FILE *f, const char *path, char *err, size_t errlen)
{
	yaml_parser_t p;
	yaml_event_t ev;
	char *key = NULL, *ep = NULL, *id = NULL, *psk = NULL, msg[200];
	int depth = 0, rc = -1;
	size_t line = 0;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			snprintf(err, errlen, "%s:%zu: %s", path, p.problem_mark.line + 1, p.problem ? p.problem : "bad YAML");
			break;
		}
		yaml_event_type_t t = ev.type;
		line = ev.start_mark.line + 1;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			rc = 0;
			break;
		}
		int bad = 0;
		if (t == YAML_SEQUENCE_START_EVENT) {
			bad = depth != 0;
			depth++;
		} else if (t == YAML_MAPPING_START_EVENT) {
			bad = depth != 1;
			depth++;
		} else if (t == YAML_MAPPING_END_EVENT) {
			depth--;
			int r = add(s, ep, id, psk, msg, sizeof msg);
			free(ep);
			free(id);
			free(psk);
			ep = id = psk = NULL;
			if (r < 0) {
				snprintf(err, errlen, "%s:%zu: %s", path, line, msg);
				yaml_event_delete(&ev);
				break;
			}
		} else if (t == YAML_SEQUENCE_END_EVENT) {
			depth--;
		} else if (t == YAML_SCALAR_EVENT) {
			const char *v = (const char *)ev.data.scalar.value;
			if (depth != 2) {
				bad = 1;
			} else if (!key) {
				key = strdup(v);
			} else {
				char **slot = strcmp(key, "ep") == 0             ? &ep
				              : strcmp(key, "psk_identity") == 0 ? &id
				              : strcmp(key, "psk_key") == 0      ? &psk
				                                                 : NULL;
				if (slot) {
					free(*slot);
					*slot = strdup(v);
				}
				free(key);
				key = NULL;
			}
		} else if (t == YAML_ALIAS_EVENT) {
			bad = 1;
		}
		yaml_event_delete(&ev);
		if (bad) {
			snprintf(err, errlen, "%s:%zu: expected a list of {ep, psk_identity, psk_key} mappings", path, line);
			break;
		}
	}
	free(key);
	free(ep);
	free(id);
	free(psk);
	yaml_parser_delete(&p);
	return rc;
}

struct lwm2m_security *lwm2m_security_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "unable to open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct lwm2m_security *s = calloc(1, sizeof *s);
	if (!s) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* JSON lines start with '{' (after blank and comment lines); anything else is YAML */
	int c, json = 0, comment = 0;
	while ((c = getc(f)) != EOF) {
		if (comment) {
			comment = c != '\n';
			continue;
		}
		if (c == '#')
			comment = 1;
		else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			json = c == '{';
			break;
		}
	}
	rewind(f);
	int rc = json ? load_jsonl(s, f, path, err, errlen) : load_yaml(s, f, path, err, errlen);
	fclose(f);
	if (rc < 0) {
		lwm2m_security_free(s);
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++)
		s->v[i].bin.s = s->v[i].key; /* the array moved while it grew */
	return s;
}

int lwm2m_security_check(const struct lwm2m_security *s, coap_session_t *cs, const char *ep, int *sec,
                         char *idbuf, size_t idlen, const char **why)
{
	idbuf[0] = 0;
	if (coap_session_get_proto(cs) != COAP_PROTO_DTLS) {
		*sec = LWM2M_SEC_NOSEC;
		if (lwm2m_security_by_ep(s, ep)) {
			*why = "endpoint has credentials: NoSec refused";
			return -1;
		}
		return 0;
	}
	const coap_bin_const_t *id = coap_session_get_psk_identity(cs);
	if (!id || id->length == 0) {
		*why = "no PSK identity on the DTLS session";
		return -1;
	}
	*sec = LWM2M_SEC_PSK;
	snprintf(idbuf, idlen, "%.*s", (int)id->length, (const char *)id->s);
	const struct lwm2m_cred *c = lwm2m_security_by_identity(s, id->s, id->length);
	if (!c) {
		*why = "PSK identity no longer in the credentials";
		return -1;
	}
	if (strcmp(c->ep, ep) != 0) {
		*why = "PSK identity is bound to another endpoint";
		return -1;
	}
	return 0;
}
