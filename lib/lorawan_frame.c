#include "lorawan_frame.h"

#include <stdio.h>
#include <string.h>

uint64_t lw_get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void lw_put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int lw_parse_join_request(const uint8_t *p, size_t len, struct lw_join_request *jr, char *err,
                          size_t errlen)
{
	if (len != LW_JOIN_REQUEST_LEN) {
		snprintf(err, errlen, "join-request PHYPayload must be %d bytes, not %zu",
		         LW_JOIN_REQUEST_LEN, len);
		return -1;
	}
	if (p[0] >> 5 != LW_MTYPE_JOIN_REQUEST) {
		snprintf(err, errlen, "PHYPayload is not a join-request (MType %d)", p[0] >> 5);
		return -1;
	}
	if ((p[0] & 3) != 0) {
		snprintf(err, errlen, "unsupported LoRaWAN major version %d", p[0] & 3);
		return -1;
	}
	jr->mhdr = p[0];
	jr->join_eui = lw_get_le(p + 1, 8);
	jr->dev_eui = lw_get_le(p + 9, 8);
	jr->dev_nonce = (uint16_t)lw_get_le(p + 17, 2);
	memcpy(jr->mic, p + 19, 4);
	return 0;
}

size_t lw_join_accept_layout(const struct lw_join_accept *ja, uint8_t *out)
{
	out[0] = LW_MTYPE_JOIN_ACCEPT << 5;
	lw_put_le(out + 1, ja->join_nonce, 3);
	lw_put_le(out + 4, ja->net_id, 3);
	lw_put_le(out + 7, ja->dev_addr, 4);
	out[11] = ja->dl_settings;
	out[12] = ja->rx_delay;
	if (!ja->has_cflist)
		return 13;
	memcpy(out + 13, ja->cflist, 16);
	return 29;
}

int lw_parse_join_accept(const uint8_t *p, size_t len, struct lw_join_accept *ja, uint8_t mic[4])
{
	if ((len != 17 && len != 33) || p[0] >> 5 != LW_MTYPE_JOIN_ACCEPT)
		return -1;
	memset(ja, 0, sizeof *ja);
	ja->join_nonce = (uint32_t)lw_get_le(p + 1, 3);
	ja->net_id = (uint32_t)lw_get_le(p + 4, 3);
	ja->dev_addr = (uint32_t)lw_get_le(p + 7, 4);
	ja->dl_settings = p[11];
	ja->rx_delay = p[12];
	if (len == 33) {
		ja->has_cflist = 1;
		memcpy(ja->cflist, p + 13, 16);
	}
	memcpy(mic, p + len - 4, 4);
	return 0;
}
