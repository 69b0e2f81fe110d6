#!/usr/bin/env node
// One CoAP request, by hand, for checking tests/peers/lwm2m-device.js where coap-client cannot
// show or do what a test needs (all response options; answer a notification with a Reset).
// Packets come from the npm coap-packet codec, nothing else: no retransmission, no block-wise.
//
//   node coap-probe.js --to HOST:PORT --method GET|POST|PUT|DELETE|FETCH|iPATCH [--path /3/0]
//        [--ct N] [--accept N] [--observe 0|1] [--payload TEXT | --payload-cbor JSON]
//        [--notifications N] [--reset-after N] [--cancel-after N] [--wait SECONDS]
//
// Prints one JSON line per response or notification received:
//   {"code":"2.05","type":"ACK","options":{"Content-Format":[110],"Location-Path":["3311","1"]},
//    "payload":"...", "cbor":[...]}
// --payload-cbor sends the CBOR encoding of a JSON array whose objects' keys that look like
// integers become integer keys (SenML CBOR labels). --reset-after N answers the Nth notification
// with a Reset; --cancel-after N answers it, then sends the request again with Observe 1 (same
// token, same socket); --notifications N stops after N notifications; --wait bounds the run.
'use strict';

const cbor = require('cbor');
const dgram = require('dgram');
const packet = require('coap-packet');

const o = { method: 'GET', path: '/', notifications: 0, resetAfter: 0, wait: 5 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
	const v = argv[i + 1];
	switch (argv[i]) {
	case '--to': o.to = v; break;
	case '--method': o.method = v; break;
	case '--path': o.path = v; break;
	case '--ct': o.ct = Number(v); break;
	case '--accept': o.accept = Number(v); break;
	case '--observe': o.observe = Number(v); break;
	case '--payload': o.payload = Buffer.from(v); break;
	case '--payload-cbor': o.payload = cbor.encode(JSON.parse(v).map((r) => new Map(Object.entries(r).map(([k, x]) => [/^-?\d+$/.test(k) ? Number(k) : k, x])))); break;
	case '--notifications': o.notifications = Number(v); break;
	case '--reset-after': o.resetAfter = Number(v); break;
	case '--cancel-after': o.cancelAfter = Number(v); break;
	case '--wait': o.wait = Number(v); break;
	default:
		process.stderr.write(`coap-probe: unknown option ${argv[i]}\n`);
		process.exit(100);
	}
}
const CODES = { GET: '0.01', POST: '0.02', PUT: '0.03', DELETE: '0.04', FETCH: '0.05', iPATCH: '0.07' };
if (!o.to || !CODES[o.method]) {
	process.stderr.write('usage: coap-probe.js --to HOST:PORT --method M [--path P] ...\n');
	process.exit(100);
}
const [host, port] = [o.to.slice(0, o.to.lastIndexOf(':')), Number(o.to.slice(o.to.lastIndexOf(':') + 1))];

const uint = (n) => {
	const b = [];
	for (let x = n; x > 0; x = Math.floor(x / 256)) b.unshift(x % 256);
	return Buffer.from(b);
};
const request = (observe) => {
	const options = [];
	if (observe !== undefined) options.push({ name: 'Observe', value: uint(observe) });
	for (const seg of o.path.split('/').filter((s) => s.length)) options.push({ name: 'Uri-Path', value: Buffer.from(seg) });
	if (o.ct !== undefined) options.push({ name: 'Content-Format', value: uint(o.ct) });
	if (o.accept !== undefined) options.push({ name: 'Accept', value: uint(o.accept) });
	return packet.generate({ code: CODES[o.method], confirmable: true, messageId: 4242 + (observe === 1 ? 1 : 0), token, options, payload: o.payload || Buffer.alloc(0) });
};

const token = Buffer.from('c0ffee01', 'hex');
const sock = dgram.createSocket('udp4');
let notifications = 0;
let cancelling = false;
const done = (rc) => { sock.close(); process.exit(rc); };
setTimeout(() => done(0), o.wait * 1000);

sock.on('message', (msg, rinfo) => {
	let p;
	try { p = packet.parse(msg); } catch (e) { return; }
	if (p.code === '0.00') return;
	const opts = {};
	for (const { name, value } of p.options) {
		let v;
		if (['Content-Format', 'Accept', 'Observe', 'Max-Age'].includes(name)) v = value.length ? value.readUIntBE(0, value.length) : 0;
		else if (name.endsWith('-Path') || name.endsWith('-Query')) v = value.toString();
		else v = value.toString('hex');
		(opts[name] = opts[name] || []).push(v);
	}
	const out = { code: p.code, type: p.ack ? 'ACK' : p.confirmable ? 'CON' : p.reset ? 'RST' : 'NON', options: opts, payload: p.payload.toString() };
	if (opts['Content-Format'] && [60, 112, 11544].includes(opts['Content-Format'][0])) {
		// maps with integer keys (SenML CBOR labels) print as objects with those keys as strings
		const plain = (x) => (x instanceof Map ? Object.fromEntries([...x].map(([k, v]) => [String(k), plain(v)]))
			: Array.isArray(x) ? x.map(plain) : x);
		try { out.cbor = plain(cbor.decodeFirstSync(p.payload)); } catch (e) { out.cbor = `undecodable: ${e.message}`; }
		out.payload = p.payload.toString('hex');
	}
	process.stdout.write(JSON.stringify(out) + '\n');
	const isNotification = !p.ack && opts.Observe !== undefined;
	if (isNotification) {
		notifications++;
		if (o.resetAfter && notifications === o.resetAfter) {
			sock.send(packet.generate({ code: '0.00', reset: true, confirmable: false, messageId: p.messageId, token: Buffer.alloc(0) }), rinfo.port, rinfo.address);
			return;
		}
		if (p.confirmable) sock.send(packet.generate({ code: '0.00', ack: true, messageId: p.messageId, token: Buffer.alloc(0) }), rinfo.port, rinfo.address);
		if (o.cancelAfter && notifications === o.cancelAfter) {
			cancelling = true;
			sock.send(request(1), rinfo.port, rinfo.address);
			return;
		}
		if (o.notifications && notifications >= o.notifications) done(0);
		return;
	}
	if (p.confirmable) sock.send(packet.generate({ code: '0.00', ack: true, messageId: p.messageId, token: Buffer.alloc(0) }), rinfo.port, rinfo.address);
	if (o.observe !== 0 || cancelling || !p.code.startsWith('2.')) done(0);
});
sock.bind(0, '127.0.0.1', () => {
	sock.send(request(o.observe), port, host);
});
