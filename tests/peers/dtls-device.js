#!/usr/bin/env node
// A CoAP-over-DTLS (PSK) LwM2M device for the bats suites: DTLS from the npm node-dtls-client
// package, CoAP messages coded here (nothing shared with lwm2m-gw's C sources or libcoap). It
// does what a libcoap client cannot be made to do, and says message by message what happened:
// a Block1 Register whose Size1 understates it, confirmable notifications whose ACKs it
// reports (or their absence, retransmitting), large answers in Block2 parts.
//
//   node dtls-device.js --port N --identity ID --key TEXT --ep NAME [--ack-timeout MS]
//        [--retransmit N] [--block1 PARTS [--size1 BYTES]] [--big BYTES] [--commands FILE]
//        [--listen-port N] [--update /rd/ID]
//
// It registers (POST /rd?ep=NAME&lt=300 with </3/0>, CON, retransmitted like every CON it
// sends), with --update sends that registration's Update instead (from --listen-port, a
// device that comes back from another address), or with --block1 sends the Register's links in PARTS parts of 1024 bytes, the first
// with Size1 BYTES (no Size1 without --size1), one after the other while the answers are 2.31, reports the codes and exits.
// It answers GET of any path with 2.05 text "0" (Observe 0 makes an observation; Observe 1,
// or a Reset of a notification, ends it); with --big, a body of BYTES in Block2 parts of 1024
// (a notification too: its first part, the server asks for the rest).
// Commands on stdin, and appended to --commands FILE:
//   notify VALUE   a CON notification of every observation, sent again every --ack-timeout ms
//                  (default 1000) until acknowledged, --retransmit times at most (default 8)
//   quit           exit
// Events, one JSON object per line on stdout:
//   {"event":"connected"}  {"event":"registered","code":"2.01","location":"/rd/..."}
//   {"event":"updated","code":"2.04"}
//   {"event":"block1","codes":{"2.31":64,"4.13":1},"last":"4.13","size1":65536,"parts":65}
//   {"event":"get","path":"/3/0/0","observe":0,"block2":null}
//   {"event":"notify-sent","mid":N,"attempt":K}  {"event":"notify-acked","mid":N,"attempt":K}
//   {"event":"notify-reset","mid":N}  {"event":"notify-gave-up","mid":N}
'use strict';

const { dtls } = require('node-dtls-client');

const args = { ackTimeout: 1000, retransmit: 8 };
for (let i = 2; i < process.argv.length; i += 2) {
	const k = process.argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
	args[k] = process.argv[i + 1];
}
['port', 'identity', 'key', 'ep'].forEach((k) => {
	if (!args[k]) {
		process.stderr.write(`dtls-device: --${k} is required\n`);
		process.exit(100);
	}
});

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const CON = 0, NON = 1, ACK = 2, RST = 3;
const code = (c) => `${c >> 5}.${String(c & 31).padStart(2, '0')}`;

// ---- CoAP messages (RFC 7252 3) ----
function encode(m) {
	const parts = [Buffer.from([0x40 | (m.type << 4) | m.token.length, m.code, m.mid >> 8, m.mid & 255]), m.token];
	let prev = 0;
	for (const [num, val] of [...(m.options || [])].sort((a, b) => a[0] - b[0])) {
		const d = num - prev, l = val.length;
		const nib = (x) => (x < 13 ? x : x < 269 ? 13 : 14);
		const ext = (x) => (x < 13 ? [] : x < 269 ? [x - 13] : [(x - 269) >> 8, (x - 269) & 255]);
		parts.push(Buffer.from([(nib(d) << 4) | nib(l), ...ext(d), ...ext(l)]), val);
		prev = num;
	}
	if (m.payload && m.payload.length)
		parts.push(Buffer.from([0xff]), m.payload);
	return Buffer.concat(parts);
}

function decode(b) {
	if (b.length < 4 || b[0] >> 6 !== 1)
		return null;
	const tkl = b[0] & 15, m = { type: (b[0] >> 4) & 3, code: b[1], mid: (b[2] << 8) | b[3], options: [] };
	m.token = b.subarray(4, 4 + tkl);
	let i = 4 + tkl, num = 0;
	while (i < b.length && b[i] !== 0xff) {
		let d = b[i] >> 4, l = b[i] & 15;
		i++;
		if (d === 13) d = 13 + b[i++];
		else if (d === 14) { d = 269 + ((b[i] << 8) | b[i + 1]); i += 2; }
		if (l === 13) l = 13 + b[i++];
		else if (l === 14) { l = 269 + ((b[i] << 8) | b[i + 1]); i += 2; }
		num += d;
		m.options.push([num, b.subarray(i, i + l)]);
		i += l;
	}
	m.payload = i < b.length ? b.subarray(i + 1) : Buffer.alloc(0);
	return m;
}

const uint = (v) => {
	const a = [];
	for (; v > 0; v = Math.floor(v / 256))
		a.unshift(v & 255);
	return Buffer.from(a);
};
const toUint = (buf) => buf.reduce((a, x) => a * 256 + x, 0);
const opt = (m, n) => { const o = m.options.find((x) => x[0] === n); return o ? o[1] : null; };

// ---- the device ----
let mid = Math.floor(Math.random() * 60000);
const nextMid = () => (mid = (mid + 1) & 0xffff);
const pending = new Map(); // mid -> {timer, onAnswer}
const observations = new Map(); // token hex -> {token, path, seq}

const sock = dtls.createSocket({
	type: 'udp4', address: '127.0.0.1', port: Number(args.port), timeout: 10000,
	psk: { [args.identity]: args.key },
	...(args.listenPort ? { listenPort: Number(args.listenPort) } : {}),
	ciphers: ['TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CCM_8'],
});

// send a CON message again every --ack-timeout ms until answered; cb(answer) or cb(null)
function sendCon(m, cb, onTry) {
	let attempt = 0;
	const go = () => {
		if (attempt > Number(args.retransmit)) {
			pending.delete(m.mid);
			cb(null);
			return;
		}
		attempt++;
		if (onTry)
			onTry(attempt);
		sock.send(encode(m));
		pending.get(m.mid).timer = setTimeout(go, Number(args.ackTimeout));
	};
	pending.set(m.mid, { cb: (a) => cb(a, attempt) });
	go();
}

function update(location) {
	const path = location.split('/').filter((x) => x).map((x) => [11, Buffer.from(x)]);
	sendCon({ type: CON, code: 2, mid: nextMid(), token: Buffer.from('u1'), options: path }, (a) => {
		out(a ? { event: 'updated', code: code(a.code) } : { event: 'update-timeout' });
	});
}

function register() {
	const links = '</3/0>';
	sendCon({ type: CON, code: 2, mid: nextMid(), token: Buffer.from('r1'),
		options: [[11, Buffer.from('rd')], [15, Buffer.from(`ep=${args.ep}`)], [15, Buffer.from('lt=300')], [12, uint(40)]],
		payload: Buffer.from(links) }, (a) => {
		if (!a) {
			out({ event: 'register-timeout' });
			return;
		}
		const loc = a.options.filter((o) => o[0] === 8).map((o) => '/' + o[1].toString()).join('');
		out({ event: 'registered', code: code(a.code), location: loc });
	});
}

function registerBlocks(parts, size1) {
	// links of 10 bytes with their commas, the last one without: it fills the last part
	const n = Math.floor((parts * 1024 + 1) / 10);
	const body = Buffer.from('</3303/0>,'.repeat(n).slice(0, n * 10 - 1));
	const codes = {};
	const token = Buffer.from('b1');
	const step = (num) => {
		const more = (num + 1) * 1024 < body.length;
		const o = [[11, Buffer.from('rd')], [15, Buffer.from(`ep=${args.ep}`)], [12, uint(40)],
			[27, uint((num << 4) | (more ? 8 : 0) | 6)]];
		if (num === 0 && size1 !== null)
			o.push([60, uint(size1)]);
		sendCon({ type: CON, code: 2, mid: nextMid(), token, options: o,
			payload: body.subarray(num * 1024, (num + 1) * 1024) }, (a) => {
			const c = a ? code(a.code) : 'timeout';
			codes[c] = (codes[c] || 0) + 1;
			if (c === '2.31' && more && num + 1 < parts) {
				step(num + 1);
				return;
			}
			const s1 = a && opt(a, 60);
			out({ event: 'block1', codes, last: c, size1: s1 ? toUint(s1) : null, parts: num + 1,
				diagnostic: a ? a.payload.toString() : '' });
			sock.close();
		});
	};
	step(0);
}

function notifyAll(value) {
	for (const ob of observations.values()) {
		ob.seq++;
		const m = { type: CON, code: 69, mid: nextMid(), token: ob.token,
			options: [[6, uint(ob.seq)], [12, uint(0)]], payload: Buffer.from(String(value)) };
		if (args.big) {
			// the first part of the body (RFC 7959 3.4: the server asks for the rest)
			const size = Number(args.big);
			m.payload = Buffer.alloc(Math.min(size, 1024), 'x');
			m.options.push([23, uint((size > 1024 ? 8 : 0) | 6)], [28, uint(size)]);
		}
		ob.mids.add(m.mid);
		sendCon(m, (a, attempt) => {
			ob.mids.delete(m.mid);
			if (!a)
				out({ event: 'notify-gave-up', mid: m.mid });
			else if (a.type === RST)
				out({ event: 'notify-reset', mid: m.mid });
			else
				out({ event: 'notify-acked', mid: m.mid, attempt });
		}, (attempt) => out({ event: 'notify-sent', mid: m.mid, attempt }));
	}
}

function answerGet(m) {
	const obs = opt(m, 6), b2 = opt(m, 23);
	const path = m.options.filter((o) => o[0] === 11).map((o) => '/' + o[1].toString()).join('');
	const key = m.token.toString('hex');
	out({ event: 'get', path, observe: obs ? toUint(obs) : null, block2: b2 ? toUint(b2) : null });
	const o = [[12, uint(0)]];
	if (obs && toUint(obs) === 1) {
		observations.delete(key);
	} else if (obs) {
		observations.set(key, { token: m.token, path, seq: 1, mids: new Set() });
		o.push([6, uint(1)]);
	}
	let payload = Buffer.from('0');
	if (args.big) {
		const size = Number(args.big), num = b2 ? toUint(b2) >> 4 : 0;
		const whole = Buffer.alloc(size, 'x');
		payload = whole.subarray(num * 1024, (num + 1) * 1024);
		o.push([23, uint((num << 4) | ((num + 1) * 1024 < size ? 8 : 0) | 6)]);
		if (num === 0)
			o.push([28, uint(size)]);
	}
	sock.send(encode({ type: m.type === CON ? ACK : NON, code: 69, mid: m.type === CON ? m.mid : nextMid(),
		token: m.token, options: o, payload }));
}

sock.on('connected', () => {
	out({ event: 'connected' });
	if (args.block1)
		registerBlocks(Number(args.block1), args.size1 === undefined ? null : Number(args.size1));
	else if (args.update)
		update(args.update);
	else
		register();
});

sock.on('message', (b) => {
	const m = decode(b);
	if (!m)
		return;
	if (m.type === ACK || m.type === RST) {
		const p = pending.get(m.mid);
		if (p) {
			clearTimeout(p.timer);
			pending.delete(m.mid);
			p.cb(m);
		}
		return;
	}
	if (m.code === 1)
		answerGet(m);
	else if (m.code >= 1 && m.code < 32)
		sock.send(encode({ type: m.type === CON ? ACK : NON, code: 133, mid: m.type === CON ? m.mid : nextMid(),
			token: m.token }));
	else if (m.type === CON)
		sock.send(encode({ type: ACK, code: 0, mid: m.mid, token: Buffer.alloc(0) }));
});

sock.on('error', (e) => {
	out({ event: 'error', error: String(e && e.message ? e.message : e) });
	process.exit(111);
});
sock.on('close', () => process.exit(0));

function command(line) {
	const [cmd, ...rest] = line.trim().split(/\s+/);
	if (cmd === 'notify')
		notifyAll(rest.join(' '));
	else if (cmd === 'quit')
		process.exit(0);
}

function lines(feed) {
	let buf = '';
	return (d) => {
		buf += d;
		let nl;
		while ((nl = buf.indexOf('\n')) >= 0) {
			feed(buf.slice(0, nl));
			buf = buf.slice(nl + 1);
		}
	};
}

process.stdin.on('data', lines(command));
process.stdin.on('error', () => {});
if (args.commands) {
	const fs = require('fs');
	const take = lines(command);
	let off = 0;
	setInterval(() => {
		let st;
		try {
			st = fs.statSync(args.commands);
		} catch (e) {
			return;
		}
		if (st.size <= off)
			return;
		const fd = fs.openSync(args.commands, 'r');
		const b = Buffer.alloc(st.size - off);
		fs.readSync(fd, b, 0, b.length, off);
		fs.closeSync(fd);
		off = st.size;
		take(b.toString());
	}, 50);
}
