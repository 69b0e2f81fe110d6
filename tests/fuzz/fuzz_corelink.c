/* The CoRE link parser: every link and parameter of the input, then the Register/Update reading. */
#include "corelink.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct corelink_iter it;
	struct corelink l;
	size_t sum = 0; /* touch every byte the parser points at */
	corelink_iter_init(&it, (const char *)data, size);
	while (corelink_next(&it, &l) == 1) {
		for (size_t i = 0; i < l.uri_len; i++)
			sum += (unsigned char)l.uri[i];
		for (size_t p = 0; p < l.nparams; p++) {
			for (size_t i = 0; i < l.params[p].name_len; i++)
				sum += (unsigned char)l.params[p].name[i];
			for (size_t i = 0; l.params[p].value && i < l.params[p].value_len; i++)
				sum += (unsigned char)l.params[p].value[i];
		}
		(void)corelink_param(&l, "ct");
	}
	sink = sum;
	struct lwm2m_links links;
	char err[128];
	memset(&links, 0, sizeof links);
	if (lwm2m_links_parse((const char *)data, size, &links, err, sizeof err) == 0)
		lwm2m_links_free(&links);
	return 0;
}
