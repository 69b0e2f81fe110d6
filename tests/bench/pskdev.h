/* DTLS-PSK devices for lwm2m-loadgen (--psk): each device is a libcoap client session with its
 * own PSK (identity = its endpoint name) that handshakes and registers; the figure is handshakes
 * + Register per second. libcoap and its GnuTLS backend here: the handshake's cost dominates
 * a PSK device's first message, and the generator pays it like the server does. Sessions stay
 * open (registered devices keep their DTLS session) until the end of the run. */
#ifndef PSKDEV_H
#define PSKDEV_H

#include <coap3/coap.h>
#include <poll.h>

static struct {
	uint8_t key[64];
	size_t keylen;
	unsigned long next, inflight;
	uint64_t *t0;             /* when each device started, CLOCK_MONOTONIC microseconds */
	coap_session_t **sess;
} psk;

static unsigned long psk_dev(coap_session_t *s)
{
	return (unsigned long)(uintptr_t)coap_session_get_app_data(s) - 1;
}

static void psk_done(unsigned long i, int ok)
{
	if (psk.t0[i] == 0)
		return;
	uint64_t now = mono_us();
	if (ok) {
		st.registered++;
		hist_add(st.reg_hist, now - psk.t0[i]);
	} else {
		st.reg_failed++;
	}
	st.reg_t1 = now;
	psk.t0[i] = 0;
	psk.inflight--;
}

static coap_response_t psk_response(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *rcv,
                                    const coap_mid_t mid)
{
	(void)sent;
	(void)mid;
	coap_pdu_code_t c = coap_pdu_get_code(rcv);
	if (c != COAP_RESPONSE_CODE(201))
		log_info("device %lu: Register answered %d.%02d", psk_dev(s), c >> 5, c & 31);
	psk_done(psk_dev(s), c == COAP_RESPONSE_CODE(201));
	return COAP_RESPONSE_OK;
}

static void psk_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid)
{
	(void)sent;
	(void)mid;
	if (reason == COAP_NACK_TOO_MANY_RETRIES)
		st.timeouts++;
	log_info("device %lu: Register failed (libcoap reason %d)", psk_dev(s), (int)reason);
	psk_done(psk_dev(s), 0);
}

static int psk_event(coap_session_t *s, const coap_event_t ev)
{
	if (ev == COAP_EVENT_DTLS_ERROR || ev == COAP_EVENT_DTLS_CLOSED) {
		unsigned long i = psk_dev(s);
		if (i < ndevs && psk.t0[i])
			psk_done(i, 0);
	}
	return 0;
}

static void psk_start(coap_context_t *ctx, const coap_address_t *dst, unsigned long i)
{
	char ep[96], q[128];
	snprintf(ep, sizeof ep, "%s%06lu", opt.prefix, opt.first + i);
	coap_dtls_cpsk_t setup = {.version = COAP_DTLS_CPSK_SETUP_VERSION};
	setup.psk_info.identity.s = (const uint8_t *)ep;
	setup.psk_info.identity.length = strlen(ep);
	setup.psk_info.key.s = psk.key;
	setup.psk_info.key.length = psk.keylen;
	psk.t0[i] = mono_us();
	if (!st.reg_t0)
		st.reg_t0 = psk.t0[i];
	psk.inflight++;
	st.reg_sent++;
	coap_session_t *s = coap_new_client_session_psk2(ctx, NULL, dst, COAP_PROTO_DTLS, &setup);
	if (!s) {
		psk_done(i, 0);
		return;
	}
	psk.sess[i] = s;
	coap_session_set_app_data(s, (void *)(uintptr_t)(i + 1));
	coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, s);
	uint8_t tok[8], b[4];
	size_t tl;
	coap_session_new_token(s, &tl, tok);
	int ok = pdu && coap_add_token(pdu, tl, tok) &&
	         coap_add_option(pdu, COAP_OPTION_URI_PATH, 2, (const uint8_t *)"rd") &&
	         coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(b, sizeof b, 40), b);
	int n = snprintf(q, sizeof q, "ep=%s", ep);
	ok = ok && coap_add_option(pdu, COAP_OPTION_URI_QUERY, (size_t)n, (const uint8_t *)q);
	n = snprintf(q, sizeof q, "lt=%lu", opt.lifetime);
	ok = ok && coap_add_option(pdu, COAP_OPTION_URI_QUERY, (size_t)n, (const uint8_t *)q);
	n = snprintf(q, sizeof q, "lwm2m=%s", opt.version);
	ok = ok && coap_add_option(pdu, COAP_OPTION_URI_QUERY, (size_t)n, (const uint8_t *)q);
	ok = ok && coap_add_option(pdu, COAP_OPTION_URI_QUERY, 3, (const uint8_t *)"b=U") &&
	     coap_add_data(pdu, strlen(opt.links), (const uint8_t *)opt.links);
	if (!ok || coap_send(s, pdu) == COAP_INVALID_MID) {
		if (pdu && !ok)
			coap_delete_pdu(pdu);
		psk_done(i, 0);
	}
}

/* One job of PSK devices: start them as the window allows, until all answered or the bound. */
static void psk_run(int ready_w)
{
	coap_startup();
	coap_set_log_level(log_level >= LOG_LVL_DEBUG ? LOG_DEBUG : LOG_ERR);
	coap_context_t *ctx = coap_new_context(NULL);
	psk.t0 = calloc(ndevs, sizeof *psk.t0);
	psk.sess = calloc(ndevs, sizeof *psk.sess);
	if (!ctx || !psk.t0 || !psk.sess)
		die(EXIT_TEMPORARY, "unable to set up libcoap");
	coap_register_response_handler(ctx, psk_response);
	coap_register_nack_handler(ctx, psk_nack);
	coap_register_event_handler(ctx, psk_event);
	coap_address_t dst;
	coap_address_init(&dst);
	dst.addr.sin = opt.server;
	dst.size = sizeof opt.server;
	uint64_t end = t_start + (uint64_t)(opt.timeout * 1e6);
	while (!stop_flag && mono_us() < end && (psk.next < ndevs || psk.inflight > 0)) {
		while (psk.next < ndevs && psk.inflight < opt.window)
			psk_start(ctx, &dst, psk.next++);
		coap_io_process(ctx, 50);
	}
	for (unsigned long i = 0; i < ndevs; i++)
		if (psk.t0[i])
			psk_done(i, 0);
	log_info("registered %" PRIu64 " of %lu PSK devices", st.registered, ndevs);
	if (ready_w >= 0 && write(ready_w, "\n", 1) != 1)
		log_warn("unable to write readiness: %s", strerror(errno));
	/* hold the sessions (registered devices) for -H seconds and, with several jobs, until every
	 * job is registered (EOF on the release pipe), then close them 64 at a time: 2000 close_notify
	 * alerts at once are a burst the server's receive queue may not hold */
	uint64_t hold_end = mono_us() + (uint64_t)(opt.hold * 1e6);
	int held = opt.release_fd >= 0;
	while (!stop_flag && (held || mono_us() < hold_end)) {
		if (held) {
			struct pollfd pf = {.fd = opt.release_fd, .events = POLLIN};
			held = poll(&pf, 1, 0) == 0;
		}
		coap_io_process(ctx, 20);
	}
	for (unsigned long i = 0; i < ndevs; i++) {
		if (psk.sess[i])
			coap_session_release(psk.sess[i]);
		if (i % 64 == 63)
			coap_io_process(ctx, 1);
	}
	coap_free_context(ctx);
	coap_cleanup();
	free(psk.t0);
	free(psk.sess);
}

#endif
