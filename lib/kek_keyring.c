#include "kek_keyring.h"

#include "fsutil.h"
#include "hex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int add(struct kek_keyring *ring, yaml_document_t *doc, yaml_node_pair_t *p, const char *name,
               char *err, size_t errlen)
{
	yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
	const char *label = scalar(kn), *hex = scalar(vn);
	unsigned long line = (kn ? kn->start_mark.line : 0) + 1;
	if (!label || !*label || !hex) {
		snprintf(err, errlen, "%s:%lu: expected \"label: hex key\"", name, line);
		return -1;
	}
	if (kek_find(ring, label)) {
		snprintf(err, errlen, "%s:%lu: KEK label \"%s\" given twice", name, line, label);
		return -1;
	}
	struct kek k = {0};
	long n = hex_decode(hex, k.key, sizeof k.key);
	if (n != 16 && n != 24 && n != 32) {
		snprintf(err, errlen, "%s:%lu: KEK \"%s\" is not 16, 24 or 32 bytes of hex", name, line, label);
		return -1;
	}
	k.len = (size_t)n;
	struct kek *nk = realloc(ring->keks, (ring->n + 1) * sizeof *nk);
	if (!nk || !(k.label = strdup(label))) {
		if (nk)
			ring->keks = nk;
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	ring->keks = nk;
	ring->keks[ring->n++] = k;
	return 0;
}

int kek_keyring_parse(struct kek_keyring *ring, const char *text, size_t len, const char *name,
                      char *err, size_t errlen)
{
	ring->keks = NULL;
	ring->n = 0;
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%lu: YAML: %s", name, (unsigned long)parser.problem_mark.line + 1,
		         parser.problem ? parser.problem : "unreadable");
		yaml_parser_delete(&parser);
		return -1;
	}
	int rc = 0;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root && root->type == YAML_MAPPING_NODE && root->data.mapping.pairs.top - root->data.mapping.pairs.start == 1) {
		yaml_node_pair_t *p = root->data.mapping.pairs.start;
		const char *k = scalar(yaml_document_get_node(&doc, p->key));
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);
		if (k && strcmp(k, "keks") == 0 && v && v->type == YAML_MAPPING_NODE)
			root = v;
	}
	if (!root) {
		/* an empty file is an empty keyring */
	} else if (root->type != YAML_MAPPING_NODE) {
		snprintf(err, errlen, "%s: expected a mapping of KEK labels to hex keys", name);
		rc = -1;
	} else {
		for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++)
			if ((rc = add(ring, &doc, p, name, err, errlen)) < 0)
				break;
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc < 0)
		kek_keyring_free(ring);
	return rc;
}

int kek_keyring_load(struct kek_keyring *ring, const char *path, char *err, size_t errlen)
{
	char *text;
	size_t len;
	ring->keks = NULL;
	ring->n = 0;
	if (fs_read_file(path, &text, &len, 1 << 20) < 0) {
		snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = kek_keyring_parse(ring, text, len, path, err, errlen);
	memset(text, 0, len);
	free(text);
	return rc;
}

const struct kek *kek_find(const struct kek_keyring *ring, const char *label)
{
	for (size_t i = 0; i < ring->n; i++)
		if (strcmp(ring->keks[i].label, label) == 0)
			return &ring->keks[i];
	return NULL;
}

void kek_keyring_free(struct kek_keyring *ring)
{
	for (size_t i = 0; i < ring->n; i++) {
		memset(ring->keks[i].key, 0, sizeof ring->keks[i].key);
		free(ring->keks[i].label);
	}
	free(ring->keks);
	ring->keks = NULL;
	ring->n = 0;
}
