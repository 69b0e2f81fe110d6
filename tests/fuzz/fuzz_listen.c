/* lwm2m-listen's two inputs on a real server (its own UDP socket on 127.0.0.1, no DTLS):
 * byte 0 even, the rest is a JSON-lines command (the control protocol, answered on stdout,
 * which goes to /dev/null); odd, the rest is a datagram from a device: the CoAP parse, the
 * registration interface (Register, Update, De-register, Send, their Uri-Query parameters and
 * CoRE link payloads, Block1 parts) and responses. Two devices are registered in queue mode and
 * asleep, so commands for "d10" (LwM2M 1.0) and "d11" (1.1) are encoded and held (one each;
 * beyond that they are answered queue-full), and nothing piles up between inputs. */
#include "lwm2m_control.h"
#include "lwm2m_server.h"

#include "log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct lwm2m_server *srv;
static struct lwm2m_control *ctl;
static int dev[3]; /* d10, d11, and the socket fuzzed datagrams come from */

static int udp_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
		abort();
	return fd;
}

static void drain(void)
{
	char b[2048];
	for (int i = 0; i < 3; i++)
		while (recv(dev[i], b, sizeof b, 0) > 0)
			;
}

static void io(void)
{
	lwm2m_server_io(srv, 1);
	(void)lwm2m_server_tick(srv);
	drain();
}

static void send_to_server(int fd, uint16_t port, const void *b, size_t n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	(void)sendto(fd, b, n, 0, (struct sockaddr *)&a, sizeof a);
}

/* POST /rd?ep=EP&lt=86400&lwm2m=V&b=UQ (Q for 1.1) with a link payload */
static void do_register(int fd, uint16_t port, const char *ep, const char *v)
{
	uint8_t b[256];
	size_t n = 0;
	b[n++] = 0x40 | 2; /* CON, token length 2 */
	b[n++] = 0x02;     /* POST */
	b[n++] = 0x12;
	b[n++] = 0x34;
	b[n++] = 0xab;
	b[n++] = 0xcd;
	b[n++] = 0xb2; /* Uri-Path (11), 2 bytes */
	memcpy(b + n, "rd", 2);
	n += 2;
	const char *q[4] = {ep, "lt=86400", v, strcmp(v, "lwm2m=1.0") == 0 ? "b=UQ" : "Q"};
	unsigned last = 11;
	for (int i = 0; i < 4; i++) {
		size_t l = strlen(q[i]);
		b[n++] = (uint8_t)((15 - last) << 4 | l);
		last = 15;
		memcpy(b + n, q[i], l);
		n += l;
	}
	static const char links[] = "</1/0>,</3/0>,</3303/0>,</3311/0>,</3347/0>";
	b[n++] = 0xff;
	memcpy(b + n, links, sizeof links - 1);
	n += sizeof links - 1;
	send_to_server(fd, port, b, n);
}

static uint16_t port;

static void setup(void)
{
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDIN_FILENO) < 0)
		abort();
	close(null);
	for (int i = 0; i < 4; i++)
		log_less();
	int probe = udp_socket();
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	if (getsockname(probe, (struct sockaddr *)&a, &al) < 0)
		abort();
	port = ntohs(a.sin_port);
	close(probe);
	static char listen[32];
	snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
	struct lwm2m_server_opts o = {
		.listen = listen, .ack_timeout = 0.1, .max_retransmit = 0, .req_timeout = 0.1, .awake_time = 0.001,
		.queue_max = 1, .queue_ttl = 1e6, .sync_interval = 1, .coap_log_level = 0, .max_per_address = 20,
	};
	ctl = lwm2m_control_new(NULL, 0);
	struct lwm2m_server_cb cb = {lwm2m_control_event, lwm2m_control_reply, ctl, lwm2m_control_flush,
	                             lwm2m_control_out_pos};
	int usage;
	if (!ctl || !(srv = lwm2m_server_new(&o, &cb, &usage)))
		abort();
	lwm2m_control_set_server(ctl, srv);
	for (int i = 0; i < 3; i++)
		dev[i] = udp_socket();
	do_register(dev[0], port, "ep=d10", "lwm2m=1.0");
	do_register(dev[1], port, "ep=d11", "lwm2m=1.1");
	io();
	usleep(5000); /* the devices fall asleep (-a 0.001) */
	io();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	if (size < 1)
		return 0;
	if (data[0] & 1)
		send_to_server(dev[2], port, data + 1, size - 1);
	else
		lwm2m_control_command(ctl, 0, (const char *)data + 1, size - 1, 1);
	io();
	return 0;
}
