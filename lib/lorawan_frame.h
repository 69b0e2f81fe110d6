/* LoRaWAN PHYPayloads of the join procedure: parse a join-request, lay out a join-accept.
 * Every length is checked; nothing reads past the given buffer. */
#ifndef LORAWAN_FRAME_H
#define LORAWAN_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
	LW_JOIN_REQUEST_LEN = 23,
	LW_MTYPE_JOIN_REQUEST = 0,
	LW_MTYPE_JOIN_ACCEPT = 1,
	LW_JOIN_ACCEPT_MAX = 33, /* MHDR + 12 + CFList 16 + MIC 4 */
};

struct lw_join_request {
	uint8_t mhdr;
	uint64_t join_eui, dev_eui;
	uint16_t dev_nonce;
	uint8_t mic[4];
};

/* Parse a join-request PHYPayload. 0, or -1 with a reason in err. */
int lw_parse_join_request(const uint8_t *p, size_t len, struct lw_join_request *jr, char *err,
                          size_t errlen);

struct lw_join_accept {
	uint32_t join_nonce; /* 24 bits */
	uint32_t net_id;     /* 24 bits */
	uint32_t dev_addr;
	uint8_t dl_settings, rx_delay;
	uint8_t cflist[16];
	int has_cflist;
};

/* MHDR|JoinNonce|NetID|DevAddr|DLSettings|RxDelay[|CFList] into out (29 bytes room): the
 * clear message the join-accept MIC covers. Returns its length, 13 or 29. */
size_t lw_join_accept_layout(const struct lw_join_accept *ja, uint8_t *out);
/* Parse a decrypted join-accept (MHDR ... MIC, 17 or 33 bytes). 0, or -1. */
int lw_parse_join_accept(const uint8_t *p, size_t len, struct lw_join_accept *ja, uint8_t mic[4]);

uint64_t lw_get_le(const uint8_t *p, int n);
void lw_put_le(uint8_t *p, uint64_t v, int n);

#endif
