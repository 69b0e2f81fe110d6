#!/usr/bin/env node
// A simulated LwM2M client for the bats suites: "the device no one here wrote". Its CoAP stack
// is the npm `coap` package; nothing here shares code with lwm2m-gw's C sources.
//
//   node lwm2m-device.js --server 127.0.0.1:5683 --ep dev1 [--lwm2m 1.0|1.1] [--lt SECONDS]
//        [--binding U|UQ] [--queue] [--objects /3/0,/4/0,...] [--port N] [--commands FILE]
//        [--silent] [--no-composite] [--drop-composite]
//
// Commands, one per line on stdin (and appended to --commands FILE):
//   set PATH VALUE        change a resource (notifies observers)
//   update                send a registration Update
//   objects /3/0,/4/0     change the advertised object instances and send an Update with them
//   register              register again (a new registration)
//   deregister            De-register
//   sleep | wake          queue mode: stop answering / resume (wake sends an Update)
//   silent on|off         never answer server requests (from now on) / answer again
//   readonly PATH         refuse writes to resource PATH with 4.05 (a device stricter than the model)
//   refuse PATH CODE      refuse writes naming resource PATH with CODE, e.g. 5.01 (Wakaama's client
//                         answers 5.01 Not Implemented to a write of its time zone /3/0/15)
//   quit                  exit at once, without de-registering (power loss)
// Events: one JSON object per line on stdout ({"event":"registered","location":"/rd/.."}, ...).
//
// Server requests: Read (TLV, SenML JSON/CBOR, text, opaque), Write, Write-Attributes, Discover,
// Execute, Create, Delete, Observe (GET with Observe; cancel with Observe 1 or a Reset) and, on
// an LwM2M 1.1 device, the composite operations: Read-Composite (FETCH / with SenML JSON or CBOR
// records naming paths; best effort, 4.04 if nothing is readable), Observe-Composite (the same
// FETCH with Observe 0; every notification carries all the paths) and Write-Composite (iPATCH /
// with SenML values; all or nothing). A 1.0 device, or a 1.1 device started with --no-composite
// (the composite operations are optional), answers FETCH and iPATCH with 4.05; one started with
// --drop-composite drops them without a word, as Wakaama's client (fc4c431) does.
'use strict';

const cbor = require('cbor');
const coap = require('coap');
const dgram = require('dgram');
const fs = require('fs');
const readline = require('readline');

// ---------------------------------------------------------------- options
const opts = {
	server: '127.0.0.1:5683', ep: 'dev1', lwm2m: '1.1', lt: 86400, binding: null, queue: false,
	objects: '/3/0,/4/0,/3303/0,/3311/0,/3347/0,/3347/1', silent: false, port: 0, commands: null,
	composite: true, dropComposite: false,
};
{
	const argv = process.argv.slice(2);
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length) usage(`${a} needs a value`);
			return argv[++i];
		};
		switch (a) {
		case '--server': opts.server = val(); break;
		case '--ep': opts.ep = val(); break;
		case '--lwm2m': opts.lwm2m = val(); break;
		case '--lt': opts.lt = parseInt(val(), 10); break;
		case '--binding': opts.binding = val(); break;
		case '--queue': opts.queue = true; break;
		case '--objects': opts.objects = val(); break;
		case '--silent': opts.silent = true; break;
		case '--no-composite': opts.composite = false; break;
		case '--drop-composite': opts.dropComposite = true; break;
		case '--port': opts.port = parseInt(val(), 10); break;
		case '--commands': opts.commands = val(); break;
		case '-h': case '--help': usage(null); break;
		default: usage(`unknown option ${a}`);
		}
	}
	if (opts.lwm2m !== '1.0' && opts.lwm2m !== '1.1') usage('--lwm2m is 1.0 or 1.1');
	if (!(opts.lt > 0)) usage('--lt must be a positive number of seconds');
}

function usage(msg) {
	if (msg) process.stderr.write(`lwm2m-device: ${msg}\n`);
	process.stderr.write('usage: lwm2m-device.js --server HOST:PORT --ep NAME [--lwm2m 1.0|1.1] ' +
		'[--lt S] [--binding U|UQ] [--queue] [--objects LIST] [--port N] [--commands FILE] [--silent] [--no-composite] [--drop-composite]\n');
	process.exit(msg ? 100 : 0);
}

const [serverHost, serverPortStr] = (() => {
	const i = opts.server.lastIndexOf(':');
	return i < 0 ? [opts.server, '5683'] : [opts.server.slice(0, i), opts.server.slice(i + 1)];
})();
const serverPort = parseInt(serverPortStr, 10);
if (opts.binding === null) opts.binding = (opts.queue && opts.lwm2m === '1.0') ? 'UQ' : 'U';
const queueMode = opts.queue || opts.binding.includes('Q');

function emit(obj) {
	process.stdout.write(JSON.stringify(obj) + '\n');
}
function log(msg) {
	process.stderr.write(`lwm2m-device[${opts.ep}]: ${msg}\n`);
}

// ---------------------------------------------------------------- object model
// type: s string, i integer, f float, b boolean, t time, o opaque; ops: R, W, E.
const DEFS = {
	1: {
		0: ['Short Server ID', 'i', 'R'], 1: ['Lifetime', 'i', 'RW'], 6: ['Notification Storing', 'b', 'RW'],
		7: ['Binding', 's', 'RW'], 8: ['Registration Update Trigger', null, 'E'],
	},
	3: {
		0: ['Manufacturer', 's', 'R'], 1: ['Model Number', 's', 'R'], 2: ['Serial Number', 's', 'R'],
		3: ['Firmware Version', 's', 'R'], 4: ['Reboot', null, 'E'], 7: ['Power Source Voltage', 'i', 'R', true],
		9: ['Battery Level', 'i', 'R'], 11: ['Error Code', 'i', 'R', true], 13: ['Current Time', 't', 'RW'],
		14: ['UTC Offset', 's', 'RW'], 16: ['Supported Binding and Modes', 's', 'R'],
	},
	4: {
		0: ['Network Bearer', 'i', 'R'], 1: ['Available Network Bearer', 'i', 'R', true],
		2: ['Radio Signal Strength', 'i', 'R'], 3: ['Link Quality', 'i', 'R'], 4: ['IP Addresses', 's', 'R', true],
	},
	3303: {
		5700: ['Sensor Value', 'f', 'R'], 5701: ['Sensor Units', 's', 'R'], 5601: ['Min Measured Value', 'f', 'R'],
		5602: ['Max Measured Value', 'f', 'R'], 5605: ['Reset Min and Max Measured Values', null, 'E'],
		5750: ['Application Type', 's', 'RW'],
	},
	3311: {
		5850: ['On/Off', 'b', 'RW'], 5851: ['Dimmer', 'i', 'RW'], 5852: ['On time', 'i', 'RW'],
		5706: ['Colour', 's', 'RW'], 5750: ['Application Type', 's', 'RW'],
	},
	3347: {
		5500: ['Digital Input State', 'b', 'R'], 5501: ['Digital Input Counter', 'i', 'R'],
		5750: ['Application Type', 's', 'RW'],
	},
};

function initialValues(obj, inst) {
	switch (obj) {
	case 1: return { 0: 1, 1: opts.lt, 6: false, 7: opts.binding };
	case 3: return {
		0: 'Open Mobile Alliance', 1: 'Lightweight M2M Client', 2: '345000123', 3: '1.0',
		7: { 0: 3800, 1: 5000 }, 9: 100, 11: { 0: 0 }, 13: null, 14: '+01:00', 16: 'UQ',
	};
	case 4: return { 0: 0, 1: { 0: 0 }, 2: -60, 3: 100, 4: { 0: '192.168.0.100' } };
	case 3303: return { 5700: 21.5, 5701: 'Cel', 5601: 18.0, 5602: 24.5, 5750: 'room' };
	case 3311: return { 5850: false, 5851: 80, 5852: 0, 5706: 'white', 5750: 'led' };
	case 3347: return { 5500: false, 5501: 3 + inst, 5750: `button ${inst}` };
	default: return {};
	}
}

const model = new Map(); // "O/I" -> { resId: value | {riid: value} }
let timeOffset = 0; // /3/0/13 reads as now + offset
function setObjects(list) {
	const wanted = ['/1/0', ...list.split(',').map((s) => s.trim()).filter((s) => s.length)];
	for (const p of wanted) {
		const m = /^\/(\d+)\/(\d+)$/.exec(p);
		if (!m || !DEFS[m[1]]) {
			log(`unsupported object instance ${p} (known objects: ${Object.keys(DEFS).join(' ')})`);
			process.exit(100);
		}
		const key = `${m[1]}/${m[2]}`;
		if (!model.has(key)) model.set(key, initialValues(Number(m[1]), Number(m[2])));
	}
	for (const key of [...model.keys()]) {
		if (!wanted.includes(`/${key}`)) model.delete(key);
	}
}
setObjects(opts.objects);

function getValue(obj, inst, res) {
	const r = model.get(`${obj}/${inst}`);
	if (!r || !(res in r)) return undefined;
	if (obj === 3 && res === 13) return Math.floor(Date.now() / 1000) + timeOffset;
	return r[res];
}
function putValue(obj, inst, res, v) {
	if (obj === 3 && res === 13) {
		timeOffset = v - Math.floor(Date.now() / 1000);
		return;
	}
	model.get(`${obj}/${inst}`)[res] = v;
}
function def(obj, res) {
	const d = DEFS[obj] && DEFS[obj][res];
	return d ? { name: d[0], type: d[1], ops: d[2], multiple: !!d[3] } : null;
}

// ---------------------------------------------------------------- paths
function parsePath(url) {
	const [p, q] = url.split('?');
	const segs = p.split('/').filter((s) => s.length);
	const ids = [];
	for (const s of segs) {
		if (!/^\d+$/.test(s) || Number(s) > 65535) return null;
		ids.push(Number(s));
	}
	const query = {};
	if (q) {
		for (const kv of q.split('&')) {
			const i = kv.indexOf('=');
			if (i < 0) query[kv] = true;
			else query[kv.slice(0, i)] = kv.slice(i + 1);
		}
	}
	return { ids, query, str: '/' + ids.join('/') };
}

// The resources under a path as [{obj, inst, res, riid?, value}] (riid for multi-resource instances).
// Returns null when the path does not exist.
function collect(ids) {
	const out = [];
	const [o, i, r, ri] = ids;
	if (ids.length === 0 || ids.length > 4) return null;
	const insts = [...model.keys()].map((k) => k.split('/').map(Number)).filter(([ko]) => ko === o)
		.map(([, ki]) => ki).sort((a, b) => a - b);
	if (insts.length === 0 && !DEFS[o]) return null;
	if (ids.length === 1) {
		if (!DEFS[o] || insts.length === 0) return insts.length === 0 ? null : out;
	}
	const useInsts = ids.length >= 2 ? insts.filter((x) => x === i) : insts;
	if (ids.length >= 2 && useInsts.length === 0) return null;
	for (const inst of useInsts) {
		const rec = model.get(`${o}/${inst}`);
		const resIds = Object.keys(rec).map(Number).sort((a, b) => a - b);
		for (const res of resIds) {
			if (ids.length >= 3 && res !== r) continue;
			const d = def(o, res);
			if (!d || !d.ops.includes('R')) {
				if (ids.length >= 3) return 'not-readable';
				continue;
			}
			const v = getValue(o, inst, res);
			if (d.multiple) {
				const riids = Object.keys(v).map(Number).sort((a, b) => a - b);
				if (ids.length === 4) {
					if (!(ri in v)) return null;
					out.push({ obj: o, inst, res, riid: ri, value: v[ri], type: d.type, multiple: true });
				} else {
					for (const k of riids) out.push({ obj: o, inst, res, riid: k, value: v[k], type: d.type, multiple: true });
					if (riids.length === 0) out.push({ obj: o, inst, res, empty: true, type: d.type, multiple: true });
				}
			} else {
				if (ids.length === 4) return null;
				out.push({ obj: o, inst, res, value: v, type: d.type, multiple: false });
			}
		}
		if (ids.length >= 3 && !(r in rec)) return null;
	}
	return out;
}

// ---------------------------------------------------------------- content formats
const CT = { text: 0, link: 40, opaque: 42, senml: 110, senmlCbor: 112, tlv: 11542, json: 11543 };
const CT_NAME = { 0: 'text', 40: 'link', 42: 'opaque', 110: 'senml-json', 112: 'senml-cbor', 11542: 'tlv', 11543: 'json' };
const CT_MIME = {
	0: 'text/plain', 40: 'application/link-format', 42: 'application/octet-stream',
	110: 'application/senml+json', 112: 'application/senml+cbor', 11542: 'application/vnd.oma.lwm2m+tlv',
};
const isSenml = (ct) => ct === CT.senml || ct === CT.senmlCbor;
function ctNumber(h) {
	if (h === undefined || h === null) return null;
	if (typeof h === 'number') return h;
	if (Buffer.isBuffer(h)) return h.length === 0 ? 0 : h.readUIntBE(0, h.length);
	for (const [n, m] of Object.entries(CT_MIME)) if (m === h) return Number(n);
	if (h === 'application/vnd.oma.lwm2m+json') return 11543;
	if (h === 'application/senml+cbor') return 112;
	if (h === 'application/vnd.oma.lwm2m+cbor') return 11544;
	if (/^\d+$/.test(String(h))) return Number(h);
	return -1;
}

function tlvHeader(type, id, len) {
	const b = [type << 6];
	if (id > 255) b[0] |= 0x20;
	let lenBytes = [];
	if (len < 8) b[0] |= len;
	else if (len < 256) { b[0] |= 0x08; lenBytes = [len]; }
	else if (len < 65536) { b[0] |= 0x10; lenBytes = [len >> 8, len & 255]; }
	else { b[0] |= 0x18; lenBytes = [len >> 16, (len >> 8) & 255, len & 255]; }
	const idBytes = id > 255 ? [id >> 8, id & 255] : [id];
	return Buffer.from([...b, ...idBytes, ...lenBytes]);
}
function tlv(type, id, value) {
	return Buffer.concat([tlvHeader(type, id, value.length), value]);
}
function tlvValue(type, v) {
	switch (type) {
	case 's': return Buffer.from(String(v), 'utf8');
	case 'b': return Buffer.from([v ? 1 : 0]);
	case 'o': return Buffer.from(v, 'base64');
	case 'f': {
		if (Math.fround(v) === v) {
			const b = Buffer.alloc(4); b.writeFloatBE(v); return b;
		}
		const b = Buffer.alloc(8); b.writeDoubleBE(v); return b;
	}
	case 'i': case 't': {
		const n = BigInt(Math.trunc(v));
		for (const size of [1, 2, 4, 8]) {
			const lim = 1n << BigInt(size * 8 - 1);
			if (n >= -lim && n < lim) {
				const b = Buffer.alloc(size);
				if (size === 1) b.writeInt8(Number(n));
				else if (size === 2) b.writeInt16BE(Number(n));
				else if (size === 4) b.writeInt32BE(Number(n));
				else b.writeBigInt64BE(n);
				return b;
			}
		}
		throw new Error('integer out of range');
	}
	default: throw new Error(`cannot encode type ${type}`);
	}
}
function tlvDecodeValue(type, b) {
	switch (type) {
	case 's': return b.toString('utf8');
	case 'b':
		if (b.length !== 1 || b[0] > 1) throw new Error('boolean TLV value must be one byte 0 or 1');
		return b[0] === 1;
	case 'o': return b.toString('base64');
	case 'f':
		if (b.length === 4) return b.readFloatBE(0);
		if (b.length === 8) return b.readDoubleBE(0);
		throw new Error(`float TLV value of ${b.length} bytes`);
	case 'i': case 't':
		if (b.length === 1) return b.readInt8(0);
		if (b.length === 2) return b.readInt16BE(0);
		if (b.length === 4) return b.readInt32BE(0);
		if (b.length === 8) return Number(b.readBigInt64BE(0));
		throw new Error(`integer TLV value of ${b.length} bytes`);
	default: throw new Error(`cannot decode type ${type}`);
	}
}
// Parse a TLV buffer into [{type, id, value (Buffer) | children}].
function tlvParse(buf) {
	const out = [];
	let p = 0;
	while (p < buf.length) {
		const h = buf[p++];
		const type = h >> 6;
		let id;
		if (h & 0x20) {
			if (p + 2 > buf.length) throw new Error('truncated TLV identifier');
			id = buf.readUInt16BE(p); p += 2;
		} else {
			if (p + 1 > buf.length) throw new Error('truncated TLV identifier');
			id = buf[p++];
		}
		const lt = (h >> 3) & 3;
		let len = h & 7;
		if (lt > 0) {
			if (p + lt > buf.length) throw new Error('truncated TLV length');
			len = buf.readUIntBE(p, lt); p += lt;
		}
		if (p + len > buf.length) throw new Error('TLV value runs past the payload');
		const value = buf.subarray(p, p + len);
		p += len;
		out.push(type === 0 || type === 2 ? { type, id, children: tlvParse(value) } : { type, id, value });
	}
	return out;
}

function encodeTlv(ids, items) {
	// Group by instance, then resource.
	const byInst = new Map();
	for (const it of items) {
		if (!byInst.has(it.inst)) byInst.set(it.inst, new Map());
		const m = byInst.get(it.inst);
		if (!m.has(it.res)) m.set(it.res, []);
		m.get(it.res).push(it);
	}
	const instBufs = [];
	for (const [inst, resMap] of byInst) {
		const resBufs = [];
		for (const [res, list] of resMap) {
			if (list[0].multiple) {
				if (ids.length === 4) {
					resBufs.push(tlv(1, list[0].riid, tlvValue(list[0].type, list[0].value)));
				} else {
					const ris = list.filter((x) => !x.empty).map((x) => tlv(1, x.riid, tlvValue(x.type, x.value)));
					resBufs.push(tlv(2, res, Buffer.concat(ris)));
				}
			} else {
				resBufs.push(tlv(3, res, tlvValue(list[0].type, list[0].value)));
			}
		}
		instBufs.push(ids.length >= 2 ? Buffer.concat(resBufs) : tlv(0, inst, Buffer.concat(resBufs)));
	}
	return Buffer.concat(instBufs);
}

function senmlRecord(it) {
	const n = it.multiple ? `${it.res}/${it.riid}` : `${it.res}`;
	const rec = { n };
	switch (it.type) {
	case 's': rec.vs = String(it.value); break;
	case 'b': rec.vb = !!it.value; break;
	case 'o': rec.vd = it.value; break;
	default: rec.v = it.value;
	}
	return rec;
}
function encodeSenml(items, ct) {
	const recs = [];
	let lastBase = null;
	for (const it of items) {
		if (it.empty) continue;
		const base = `/${it.obj}/${it.inst}/`;
		const rec = senmlRecord(it);
		if (base !== lastBase) {
			recs.push({ bn: base, ...rec });
			lastBase = base;
		} else {
			recs.push(rec);
		}
	}
	return senmlSerialize(recs, ct);
}

// SenML (RFC 8428) records as JSON-style objects ({bn, n, v, vs, vb, vd: base64, vlo}) to and
// from the wire: JSON text, or CBOR (the npm `cbor` package) with the integer labels of RFC 8428
// section 6 (LwM2M keeps the string label "vlo"; vd is a byte string in CBOR).
const SENML_CBOR_LABEL = { bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6, n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8 };
const SENML_CBOR_NAME = Object.fromEntries(Object.entries(SENML_CBOR_LABEL).map(([k, v]) => [v, k]));
function senmlSerialize(recs, ct) {
	if (ct !== CT.senmlCbor) return Buffer.from(JSON.stringify(recs));
	return cbor.encode(recs.map((r) => new Map(Object.entries(r).map(([k, v]) => [
		k in SENML_CBOR_LABEL ? SENML_CBOR_LABEL[k] : k, k === 'vd' ? Buffer.from(v, 'base64') : v]))));
}
function senmlParse(buf, ct) {
	let recs;
	if (ct === CT.senmlCbor) {
		try { recs = cbor.decodeFirstSync(buf); } catch (e) { throw new Error(`SenML CBOR: ${e.message}`); }
	} else {
		try { recs = JSON.parse(buf.toString('utf8')); } catch (e) { throw new Error(`SenML JSON: ${e.message}`); }
	}
	if (!Array.isArray(recs)) throw new Error('SenML must be an array of records');
	let bn = '';
	return recs.map((raw) => {
		const rec = {};
		if (raw instanceof Map) {
			for (const [k, v] of raw) {
				const name = typeof k === 'number' ? SENML_CBOR_NAME[k] : k;
				if (name === undefined) throw new Error(`SenML CBOR label ${k} is unknown`);
				rec[name] = name === 'vd' && Buffer.isBuffer(v) ? v.toString('base64') : v;
			}
		} else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
			Object.assign(rec, raw);
		} else {
			throw new Error('SenML record is not an object');
		}
		if ('bn' in rec) {
			if (typeof rec.bn !== 'string') throw new Error('SenML base name is not a string');
			bn = rec.bn;
		}
		if ('n' in rec && typeof rec.n !== 'string') throw new Error('SenML name is not a string');
		rec.name = bn + (rec.n || '');
		return rec;
	});
}
function senmlValue(rec) {
	for (const k of ['v', 'vs', 'vb', 'vd', 'vlo']) if (k in rec) return rec[k];
	return undefined;
}
function textValue(it) {
	if (it.type === 'b') return it.value ? '1' : '0';
	if (it.type === 'o') return Buffer.from(it.value, 'base64');
	return String(it.value);
}

// ---------------------------------------------------------------- values from the outside
function coerce(type, v, what) {
	switch (type) {
	case 's': if (typeof v === 'string') return v; break;
	case 'b': if (typeof v === 'boolean') return v; break;
	case 'i': case 't': if (typeof v === 'number' && Number.isInteger(v)) return v; break;
	case 'f': if (typeof v === 'number') return v; break;
	case 'o': if (typeof v === 'string') return v; break;
	default: break;
	}
	throw new Error(`${what}: ${JSON.stringify(v)} does not fit type ${type}`);
}
function parseText(type, s, what) {
	switch (type) {
	case 's': return s;
	case 'b':
		if (s === '1' || s === 'true') return true;
		if (s === '0' || s === 'false') return false;
		break;
	case 'i': case 't': if (/^-?\d+$/.test(s)) return Number(s); break;
	case 'f': if (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s); break;
	case 'o': return Buffer.from(s).toString('base64');
	default: break;
	}
	throw new Error(`${what}: "${s}" does not fit type ${type}`);
}

// Decode a write payload on path ids into [{obj, inst, res, riid?, value}].
function decodeWrite(ids, ct, payload) {
	const [o, i, r] = ids;
	const out = [];
	const pushDecoded = (inst, res, riid, raw, decode) => {
		const d = def(o, res);
		if (!d) { out.push({ obj: o, inst, res, riid, unknown: true }); return; }
		if (d.type === null) { out.push({ obj: o, inst, res, riid, notWritable: true }); return; }
		out.push({ obj: o, inst, res, riid, value: decode(d.type, raw, `/${o}/${inst}/${res}`), multiple: d.multiple });
	};
	if (ct === CT.text || ct === CT.opaque) {
		if (ids.length < 3) throw new Error('text/opaque writes need a resource path');
		pushDecoded(i, r, ids[3], payload, (t, raw, w) => (ct === CT.opaque ? raw.toString('base64') : parseText(t, raw.toString('utf8'), w)));
		return out;
	}
	if (ct === CT.tlv) {
		const walkRes = (inst, nodes) => {
			for (const n of nodes) {
				if (n.type === 3) pushDecoded(inst, n.id, undefined, n.value, tlvDecodeValue);
				else if (n.type === 2) {
					const d = def(o, n.id);
					if (n.children.length === 0 && d) out.push({ obj: o, inst, res: n.id, emptyMulti: true, multiple: true });
					for (const c of n.children) pushDecoded(inst, n.id, c.id, c.value, tlvDecodeValue);
				} else if (n.type === 1 && ids.length >= 3) pushDecoded(inst, r, n.id, n.value, tlvDecodeValue);
				else throw new Error('unexpected TLV nesting');
			}
		};
		const nodes = tlvParse(payload);
		if (nodes.length === 1 && nodes[0].type === 0) walkRes(nodes[0].id, nodes[0].children);
		else if (ids.length >= 2) walkRes(i, nodes);
		else throw new Error('TLV on an object path needs object instance TLVs');
		return out;
	}
	if (isSenml(ct)) {
		for (const rec of senmlParse(payload, ct)) {
			const name = rec.name;
			const p = parsePath(name);
			if (!p || p.ids.length < 3 || p.ids[0] !== o) throw new Error(`SenML name ${name} outside ${'/' + ids.join('/')}`);
			const v = senmlValue(rec);
			if (v === undefined) throw new Error(`SenML record ${name} has no value`);
			pushDecoded(p.ids[1], p.ids[2], p.ids[3], v, coerce);
		}
		return out;
	}
	throw new Error('unsupported content format');
}

// ---------------------------------------------------------------- CoAP endpoint
const sock = dgram.createSocket({ type: 'udp4' });
let asleep = false;
let silent = opts.silent;
// A sleeping or silent device drops requests before the CoAP stack sees them (a radio that is
// off sends no ACK either); responses to its own requests still get through.
const origEmit = sock.emit.bind(sock);
sock.emit = (ev, ...args) => {
	if (ev === 'message' && (asleep || silent)) {
		const msg = args[0];
		const code = msg.length >= 2 ? msg[1] : 0;
		if (code >= 1 && code <= 31) {
			const cls = ['?', 'GET', 'POST', 'PUT', 'DELETE', 'FETCH', 'PATCH', 'iPATCH'][code] || String(code);
			emit({ event: 'dropped', method: cls, why: asleep ? 'asleep' : 'silent' });
			return false;
		}
	}
	return origEmit(ev, ...args);
};

const server = coap.createServer({ piggybackReplyMs: 2000 });
let agent = null;

const observers = []; // {key, ids, path, res, ct, token, peer}
const attributes = new Map(); // path string -> {pmin, pmax, ...}
const readOnly = new Set(); // resources this device refuses to write although the model allows it
const refused = new Map(); // resource path -> the code a write naming it gets (refuse command)

function reply(res, code, payload, ct) {
	// an Observe request gets an ObserveWriteStream, which sends statusCode, not code
	res.code = code;
	res.statusCode = code;
	if (ct !== undefined && ct !== null) res.setOption('Content-Format', ct);
	res.end(payload === undefined ? undefined : payload);
}

function chooseReadFormat(ids, accept) {
	if (accept === null) return opts.lwm2m === '1.0' ? CT.tlv : CT.senml;
	if (accept === CT.tlv || isSenml(accept)) return accept;
	if (accept === CT.text && ids.length >= 3) return CT.text;
	if (accept === CT.opaque && ids.length >= 3) return CT.opaque;
	return -1;
}

function encodeRead(ids, items, ct) {
	if (ct === CT.tlv) return encodeTlv(ids, items);
	if (isSenml(ct)) return encodeSenml(items, ct);
	// text/opaque: exactly one value
	const vals = items.filter((x) => !x.empty);
	if (vals.length !== 1 || (vals[0].multiple && ids.length < 4)) return null;
	if (ct === CT.opaque) return vals[0].type === 'o' ? Buffer.from(vals[0].value, 'base64') : null;
	return Buffer.from(textValue(vals[0]));
}

function itemsValue(ids, items) {
	// A JSON summary of what was read, for the event line.
	const v = {};
	for (const it of items) {
		if (it.empty) continue;
		const p = `/${it.obj}/${it.inst}/${it.res}` + (it.multiple ? `/${it.riid}` : '');
		v[p] = it.value;
	}
	return v;
}

function readPayload(ids, ct) {
	const items = collect(ids);
	if (items === null) return { code: '4.04' };
	if (items === 'not-readable') return { code: '4.05' };
	const payload = encodeRead(ids, items, ct);
	if (payload === null) return { code: '4.06' };
	return { code: '2.05', payload, items };
}

function handleGet(req, res, p) {
	const accept = ctNumber(req.headers.Accept);
	if (accept === CT.link) return handleDiscover(req, res, p);
	const ct = chooseReadFormat(p.ids, accept);
	const observe = req.headers.Observe;
	if (ct < 0) {
		emit({ event: observe === 0 ? 'observe' : 'read', path: p.str, code: '4.06', accept });
		return reply(res, '4.06');
	}
	const r = readPayload(p.ids, ct);
	if (observe === 0 && r.code === '2.05') {
		const token = req._packet.token.toString('hex');
		const peer = `${req.rsinfo.address}:${req.rsinfo.port}`;
		// A new Observe with the same token from the same peer replaces the old one (RFC 7641 4.1).
		for (let k = observers.length - 1; k >= 0; k--) {
			if (observers[k].token === token && observers[k].peer === peer) {
				const old = observers.splice(k, 1)[0];
				old.res.removeAllListeners('finish');
			}
		}
		const o = { ids: p.ids, path: p.str, res, ct, token, peer, last: r.payload };
		observers.push(o);
		res.on('finish', () => {
			const k = observers.indexOf(o);
			if (k >= 0) {
				observers.splice(k, 1);
				emit({ event: 'observe-end', path: p.str, token });
			}
		});
		res.on('error', () => {});
		emit({ event: 'observe', path: p.str, format: CT_NAME[ct], token, values: itemsValue(p.ids, r.items) });
		res.setOption('Content-Format', ct);
		res.write(r.payload);
		schedulePmax(o);
		return;
	}
	if (observe === 1) cancelObserver(req._packet.token.toString('hex'), `${req.rsinfo.address}:${req.rsinfo.port}`, p.str);
	emit({ event: 'read', path: p.str, format: CT_NAME[ct], code: r.code, values: r.items ? itemsValue(p.ids, r.items) : undefined });
	if (r.code !== '2.05') return reply(res, r.code);
	return reply(res, '2.05', r.payload, ct);
}

function cancelObserver(token, peer, path) {
	for (let k = observers.length - 1; k >= 0; k--) {
		const o = observers[k];
		if (o.token === token && o.peer === peer) {
			observers.splice(k, 1);
			if (o.timer) clearTimeout(o.timer);
			emit({ event: 'cancel-observe', path: path || o.path, token });
			o.res.removeAllListeners('finish');
			o.res.end();
		}
	}
}

function schedulePmax(o) {
	if (o.timer) clearTimeout(o.timer);
	const a = attributes.get(o.path) || {};
	const pmax = Number(a.pmax);
	if (pmax > 0) o.timer = setTimeout(() => notifyOne(o, true), pmax * 1000);
}

function notifyOne(o, force) {
	const r = o.composite ? readComposite(o.composite, o.ct) : readPayload(o.ids, o.ct);
	if (r.code !== '2.05') {
		// The observed resource went away (instance deleted): end with 4.04 per RFC 7641.
		const k = observers.indexOf(o);
		if (k >= 0) observers.splice(k, 1);
		o.res.removeAllListeners('finish');
		o.res.code = '4.04';
		o.res.statusCode = '4.04';
		o.res.end();
		emit({ event: 'observe-end', path: o.path, token: o.token, code: '4.04' });
		return;
	}
	if (!force && Buffer.compare(r.payload, o.last) === 0) return;
	o.last = r.payload;
	if (asleep) return; // a sleeping device sends nothing; the next wake notifies
	o.res.write(r.payload);
	emit({ event: 'notify', path: o.path, paths: o.paths, token: o.token, values: itemsValue(o.ids, r.items) });
	schedulePmax(o);
}

function covers(ids, obj, inst, res) {
	const [oo, oi, or] = ids;
	if (ids.length === 0) return true;
	if (oo !== obj) return false;
	if (ids.length >= 2 && oi !== inst) return false;
	if (ids.length >= 3 && res !== undefined && or !== res) return false;
	return true;
}

function notifyChanged(obj, inst, res) {
	for (const o of [...observers]) {
		const hit = o.composite ? o.composite.some((ids) => covers(ids, obj, inst, res)) : covers(o.ids, obj, inst, res);
		if (hit) notifyOne(o, false);
	}
}

// ---------------------------------------------------------------- composite operations (LwM2M 1.1)
// Read-Composite and Observe-Composite are a FETCH on the root path whose payload lists the paths
// as SenML records with names only; Write-Composite an iPATCH on the root path with SenML values
// (OMA LwM2M core and transport TS 1.1, as Leshan implements them; RFC 8790).

// The values under several paths, as one SenML payload. The operation is best effort: a path
// with nothing readable is left out; if none is readable the answer is 4.04.
function readComposite(list, ct) {
	const items = [];
	const seen = new Set();
	let any = false;
	for (const ids of list) {
		let got;
		if (ids.length === 0) {
			got = [];
			for (const o of Object.keys(DEFS).map(Number)) {
				const r = collect([o]);
				if (Array.isArray(r)) got.push(...r);
			}
		} else {
			got = collect(ids);
		}
		if (!Array.isArray(got)) continue;
		any = true;
		for (const it of got) {
			const key = `${it.obj}/${it.inst}/${it.res}/${it.multiple ? it.riid : ''}`;
			if (seen.has(key)) continue;
			seen.add(key);
			items.push(it);
		}
	}
	if (!any) return { code: '4.04' };
	return { code: '2.05', payload: encodeSenml(items, ct), items };
}

// The paths named by a FETCH payload, as [ids]; throws on anything malformed.
function compositePaths(req, ct) {
	if (!req.payload || req.payload.length === 0) throw new Error('no paths in the payload');
	const list = [];
	for (const rec of senmlParse(req.payload, ct)) {
		const p = parsePath(rec.name);
		if (!p || rec.name.includes('?') || !rec.name.startsWith('/')) throw new Error(`${JSON.stringify(rec.name)} is not an LwM2M path`);
		if (p.ids.length > 4) throw new Error(`${rec.name} is not an LwM2M path`);
		list.push(p.ids);
	}
	if (list.length === 0) throw new Error('no paths in the payload');
	return list;
}

// A 1.0 device knows neither FETCH nor iPATCH: refuse like the 1.0 enabler, 4.05.
function refuseComposite(res, p, method) {
	const why = opts.lwm2m === '1.0' ? 'LwM2M 1.0 has no composite operations' : 'this device has no composite operations';
	emit({ event: 'bad-request', method, path: p.str, why });
	return reply(res, '4.05');
}

function handleFetch(req, res, p) {
	if (opts.dropComposite) return emit({ event: 'dropped-composite', method: 'FETCH', path: p.str });
	if (opts.lwm2m === '1.0' || !opts.composite) return refuseComposite(res, p, 'FETCH');
	const observe = req.headers.Observe;
	const op = observe === 0 ? 'observe-composite' : observe === 1 ? 'cancel-observe-composite' : 'read-composite';
	const fail = (code, error) => {
		emit({ event: op, code, error });
		return reply(res, code);
	};
	if (p.ids.length !== 0) return fail('4.04', 'composite operations address the root path');
	const ct = ctNumber(req.headers['Content-Format']);
	if (!isSenml(ct)) return fail('4.15', `unsupported content format ${ct}`);
	let list;
	try {
		list = compositePaths(req, ct);
	} catch (e) {
		return fail('4.00', e.message);
	}
	let accept = ctNumber(req.headers.Accept);
	if (accept === null) accept = ct;
	if (!isSenml(accept)) return fail('4.06', `cannot answer in content format ${accept}`);
	const paths = list.map((ids) => '/' + ids.join('/'));
	const token = req._packet.token.toString('hex');
	const peer = `${req.rsinfo.address}:${req.rsinfo.port}`;
	const r = readComposite(list, accept);
	if (observe === 0 && r.code === '2.05') {
		for (let k = observers.length - 1; k >= 0; k--) {
			if (observers[k].token === token && observers[k].peer === peer) {
				const old = observers.splice(k, 1)[0];
				old.res.removeAllListeners('finish');
			}
		}
		const o = { ids: [], composite: list, path: '/', paths, res, ct: accept, token, peer, last: r.payload };
		observers.push(o);
		res.on('finish', () => {
			const k = observers.indexOf(o);
			if (k >= 0) {
				observers.splice(k, 1);
				emit({ event: 'observe-end', paths, token });
			}
		});
		res.on('error', () => {});
		emit({ event: 'observe-composite', paths, format: CT_NAME[accept], request_format: CT_NAME[ct], token, values: itemsValue([], r.items) });
		res.setOption('Content-Format', accept);
		res.write(r.payload);
		return;
	}
	if (observe === 1) cancelObserver(token, peer, '/');
	emit({ event: op, paths, format: CT_NAME[accept], request_format: CT_NAME[ct], code: r.code, values: r.items ? itemsValue([], r.items) : undefined });
	if (r.code !== '2.05') return reply(res, r.code);
	return reply(res, '2.05', r.payload, accept);
}

// Write-Composite: every record names a resource or resource instance with its new value. It
// applies whole or not at all: all records are checked before any is written.
function handleIpatch(req, res, p) {
	if (opts.dropComposite) return emit({ event: 'dropped-composite', method: 'iPATCH', path: p.str });
	if (opts.lwm2m === '1.0' || !opts.composite) return refuseComposite(res, p, 'iPATCH');
	const fail = (code, error) => {
		emit({ event: 'write-composite', code, error });
		return reply(res, code);
	};
	if (p.ids.length !== 0) return fail('4.04', 'composite operations address the root path');
	const ct = ctNumber(req.headers['Content-Format']);
	if (!isSenml(ct)) return fail('4.15', `unsupported content format ${ct}`);
	const items = [];
	try {
		if (!req.payload || req.payload.length === 0) throw new Error('no values in the payload');
		for (const rec of senmlParse(req.payload, ct)) {
			const q = parsePath(rec.name);
			if (!q || q.ids.length < 3 || q.ids.length > 4) throw new Error(`${JSON.stringify(rec.name)} is not a resource path`);
			const v = senmlValue(rec);
			if (v === undefined) throw new Error(`SenML record ${rec.name} has no value`);
			items.push({ ids: q.ids, path: q.str, raw: v });
		}
	} catch (e) {
		return fail('4.00', e.message);
	}
	for (const it of items) {
		const [o, i, r, ri] = it.ids;
		const rec = model.get(`${o}/${i}`);
		if (!rec) return fail('4.04', `no object instance /${o}/${i}`);
		const d = def(o, r);
		if (!d || !(r in rec)) return fail('4.04', `no resource ${it.path}`);
		if (d.type === null || !d.ops.includes('W') || readOnly.has(`/${o}/${i}/${r}`)) return fail('4.05', `${it.path} is not writable`);
		if (refused.has(`/${o}/${i}/${r}`)) return fail(refused.get(`/${o}/${i}/${r}`), `${it.path} refused (refuse command)`);
		if (d.multiple !== (ri !== undefined)) return fail('4.00', `${it.path}: ${d.multiple ? 'multi' : 'single'}-instance resource`);
		try {
			it.value = coerce(d.type, it.raw, it.path);
		} catch (e) {
			return fail('4.00', e.message);
		}
	}
	const changed = [];
	for (const it of items) {
		const [o, i, r, ri] = it.ids;
		if (ri !== undefined) model.get(`${o}/${i}`)[r][ri] = it.value;
		else putValue(o, i, r, it.value);
		if (!changed.some(([a, b, c]) => a === o && b === i && c === r)) changed.push([o, i, r]);
		emit({ event: 'write-composite', path: it.path, format: CT_NAME[ct], code: '2.04', value: it.value });
	}
	reply(res, '2.04');
	for (const [o, i, r] of changed) notifyChanged(o, i, r);
}

function handleDiscover(req, res, p) {
	const [o, i, r] = p.ids;
	if (p.ids.length === 0 || p.ids.length > 3 || !DEFS[o]) {
		emit({ event: 'discover', path: p.str, code: '4.04' });
		return reply(res, '4.04');
	}
	const insts = [...model.keys()].map((k) => k.split('/').map(Number)).filter(([ko]) => ko === o).map(([, ki]) => ki);
	if (p.ids.length >= 2 && !insts.includes(i)) {
		emit({ event: 'discover', path: p.str, code: '4.04' });
		return reply(res, '4.04');
	}
	const attr = (path) => {
		const a = attributes.get(path);
		return a ? Object.entries(a).map(([k, v]) => `;${k}=${v}`).join('') : '';
	};
	const links = [];
	if (p.ids.length === 1) links.push(`</${o}>${attr(`/${o}`)}`);
	for (const inst of insts.sort((a, b) => a - b)) {
		if (p.ids.length >= 2 && inst !== i) continue;
		const rec = model.get(`${o}/${inst}`);
		if (p.ids.length <= 2) links.push(`</${o}/${inst}>${attr(`/${o}/${inst}`)}`);
		for (const res of Object.keys(rec).map(Number).sort((a, b) => a - b)) {
			if (p.ids.length === 3 && res !== r) continue;
			const d = def(o, res);
			let dim = '';
			if (d && d.multiple && p.ids.length >= 2) dim = `;dim=${Object.keys(rec[res]).length}`;
			links.push(`</${o}/${inst}/${res}>${dim}${attr(`/${o}/${inst}/${res}`)}`);
		}
		if (p.ids.length === 3 && !(r in rec)) {
			emit({ event: 'discover', path: p.str, code: '4.04' });
			return reply(res, '4.04');
		}
	}
	const text = links.join(',');
	emit({ event: 'discover', path: p.str, code: '2.05', links: text });
	return reply(res, '2.05', Buffer.from(text), CT.link);
}

function handleWriteAttributes(req, res, p) {
	const allowed = ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax'];
	const a = {};
	for (const [k, v] of Object.entries(p.query)) {
		if (!allowed.includes(k) || (v !== true && !/^-?\d+(\.\d+)?$/.test(v))) {
			emit({ event: 'write-attributes', path: p.str, code: '4.00', error: `bad attribute ${k}` });
			return reply(res, '4.00');
		}
		a[k] = v;
	}
	if (collect(p.ids) === null) {
		emit({ event: 'write-attributes', path: p.str, code: '4.04' });
		return reply(res, '4.04');
	}
	const cur = attributes.get(p.str) || {};
	for (const [k, v] of Object.entries(a)) {
		if (v === true) delete cur[k]; else cur[k] = v;
	}
	attributes.set(p.str, cur);
	for (const o of observers) if (o.path === p.str) schedulePmax(o);
	emit({ event: 'write-attributes', path: p.str, code: '2.04', attributes: cur });
	return reply(res, '2.04');
}

function handleWrite(req, res, p, method) {
	const ids = p.ids;
	const ct = ctNumber(req.headers['Content-Format']);
	const fail = (code, error) => {
		emit({ event: 'write', path: p.str, method, code, error });
		return reply(res, code);
	};
	if (ids.length < 2 || ids.length > 4) return fail('4.05', 'write needs an instance or resource path');
	if (!model.has(`${ids[0]}/${ids[1]}`)) return fail('4.04', 'no such object instance');
	if (ids.length >= 3 && !(ids[2] in model.get(`${ids[0]}/${ids[1]}`))) return fail('4.04', 'no such resource');
	if (ct === null) return fail('4.00', 'no Content-Format');
	if (![CT.text, CT.opaque, CT.tlv, CT.senml, CT.senmlCbor].includes(ct)) return fail('4.15', `unsupported content format ${ct}`);
	let items;
	try {
		items = decodeWrite(ids, ct, req.payload);
	} catch (e) {
		return fail('4.00', e.message);
	}
	// Validate everything first: a write applies whole or not at all.
	for (const it of items) {
		const path = `/${it.obj}/${it.inst}/${it.res}`;
		if (it.inst !== ids[1] || (ids.length >= 3 && it.res !== ids[2])) return fail('4.00', `${path} is outside ${p.str}`);
		const rec = model.get(`${it.obj}/${it.inst}`);
		if (it.unknown || !(it.res in rec)) return fail('4.04', `no resource ${path}`);
		const d = def(it.obj, it.res);
		if (it.notWritable || !d.ops.includes('W') || readOnly.has(path)) return fail('4.05', `${path} is not writable`);
		if (refused.has(path)) return fail(refused.get(path), `${path} refused (refuse command)`);
		if (!d.multiple && it.riid !== undefined) return fail('4.00', `${path} is single-instance`);
	}
	const changed = [];
	for (const it of items) {
		const d = def(it.obj, it.res);
		if (d.multiple) {
			const rec = model.get(`${it.obj}/${it.inst}`);
			const replace = method === 'PUT' && ids.length <= 3;
			if (replace && !changed.includes(it.res)) rec[it.res] = {};
			if (!it.emptyMulti) rec[it.res][it.riid] = it.value;
		} else {
			putValue(it.obj, it.inst, it.res, it.value);
		}
		if (!changed.includes(it.res)) changed.push(it.res);
		const path = `/${it.obj}/${it.inst}/${it.res}` + (it.riid !== undefined ? `/${it.riid}` : '');
		emit({ event: 'write', path, method, format: CT_NAME[ct], code: '2.04', value: it.value });
	}
	reply(res, '2.04');
	for (const r of changed) notifyChanged(ids[0], ids[1], r);
}

function handleExecute(req, res, p) {
	const [o, i, r] = p.ids;
	const rec = model.get(`${o}/${i}`);
	const d = def(o, r);
	if (!rec || !d) {
		emit({ event: 'execute', path: p.str, code: '4.04' });
		return reply(res, '4.04');
	}
	if (!d.ops.includes('E')) {
		emit({ event: 'execute', path: p.str, code: '4.05' });
		return reply(res, '4.05');
	}
	const args = req.payload ? req.payload.toString('utf8') : '';
	emit({ event: 'execute', path: p.str, code: '2.04', args });
	reply(res, '2.04');
	if (o === 1 && r === 8) setImmediate(() => sendUpdate(false));
	if (o === 3303 && r === 5605) {
		const v = model.get(`${o}/${i}`)[5700];
		model.get(`${o}/${i}`)[5601] = v;
		model.get(`${o}/${i}`)[5602] = v;
	}
}

function handleCreate(req, res, p) {
	const o = p.ids[0];
	if (!DEFS[o] || o === 1 || o === 3 || o === 4) {
		emit({ event: 'create', path: p.str, code: DEFS[o] ? '4.05' : '4.04' });
		return reply(res, DEFS[o] ? '4.05' : '4.04');
	}
	const ct = ctNumber(req.headers['Content-Format']);
	let inst = 0;
	while (model.has(`${o}/${inst}`)) inst++;
	let items = [];
	try {
		if (ct === CT.tlv) {
			const nodes = tlvParse(req.payload);
			if (nodes.length === 1 && nodes[0].type === 0) inst = nodes[0].id;
		}
		if (req.payload.length) items = decodeWrite([o, inst], ct, req.payload);
	} catch (e) {
		emit({ event: 'create', path: p.str, code: '4.00', error: e.message });
		return reply(res, '4.00');
	}
	if (items.length && items[0].inst !== inst) inst = items[0].inst;
	if (model.has(`${o}/${inst}`)) {
		emit({ event: 'create', path: p.str, code: '4.00', error: `instance ${inst} exists` });
		return reply(res, '4.00');
	}
	const rec = initialValues(o, inst);
	for (const it of items) if (it.res in rec && !it.unknown) rec[it.res] = it.value;
	model.set(`${o}/${inst}`, rec);
	emit({ event: 'create', path: `/${o}/${inst}`, code: '2.01' });
	// node-coap takes the values of a repeated option as Buffers
	res.setOption('Location-Path', [Buffer.from(String(o)), Buffer.from(String(inst))]);
	return reply(res, '2.01');
}

function handleDelete(req, res, p) {
	if (p.ids.length !== 2) {
		emit({ event: 'delete', path: p.str, code: '4.05' });
		return reply(res, '4.05');
	}
	const key = `${p.ids[0]}/${p.ids[1]}`;
	if (!model.has(key)) {
		emit({ event: 'delete', path: p.str, code: '4.04' });
		return reply(res, '4.04');
	}
	model.delete(key);
	emit({ event: 'delete', path: p.str, code: '2.02' });
	reply(res, '2.02');
	notifyChanged(p.ids[0], p.ids[1], undefined);
}

server.on('request', (req, res) => {
	res.on('error', (e) => log(`response error: ${e.message}`));
	if (req._packet.code === '0.00') {
		// An empty message is no request (node-coap hands over a Reset it has no record of):
		// a CoAP ping (empty CON) gets a Reset, anything else is ignored.
		if (req._packet.confirmable) res.reset();
		return;
	}
	const p = parsePath(req.url);
	if (p === null) {
		emit({ event: 'bad-request', url: req.url });
		return reply(res, '4.00');
	}
	const method = req.method;
	const hasPayload = req.payload && req.payload.length > 0;
	if (method === 'GET') return handleGet(req, res, p);
	if (method === 'PUT') {
		if (!hasPayload && req.headers['Content-Format'] === undefined) return handleWriteAttributes(req, res, p);
		return handleWrite(req, res, p, 'PUT');
	}
	if (method === 'POST') {
		if (p.ids.length === 1) return handleCreate(req, res, p);
		if (p.ids.length === 3) return handleExecute(req, res, p);
		return handleWrite(req, res, p, 'POST');
	}
	if (method === 'DELETE') return handleDelete(req, res, p);
	if (method === 'FETCH') return handleFetch(req, res, p);
	if (method === 'iPATCH') return handleIpatch(req, res, p);
	emit({ event: 'bad-request', method, path: p.str });
	return reply(res, '4.05');
});

// ---------------------------------------------------------------- registration interface
let location = null; // "/rd/xyz"
let updateTimer = null;
let announced = null; // the object list as last sent

function linkPayload() {
	const keys = [...model.keys()].map((k) => k.split('/').map(Number))
		.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
	const links = [];
	if (opts.lwm2m === '1.1') links.push('</>;rt="oma.lwm2m";ct="110 112"');
	for (const [o, i] of keys) links.push(`</${o}/${i}>`);
	return links.join(',');
}

function request(method, pathname, query, payload, done) {
	const req = agent.request({
		hostname: serverHost, port: serverPort, method, pathname, query, confirmable: true,
		options: payload ? { 'Content-Format': 'application/link-format' } : {},
	});
	let finished = false;
	req.on('response', (res) => {
		if (finished) return;
		finished = true;
		const loc = res.options.filter((o) => o.name === 'Location-Path').map((o) => o.value.toString());
		done(null, res.code, loc);
	});
	req.on('error', (e) => {
		if (finished) return;
		finished = true;
		done(e);
	});
	req.on('timeout', (e) => {
		if (finished) return;
		finished = true;
		done(e || new Error('timeout'));
	});
	req.end(payload ? Buffer.from(payload) : undefined);
}

function scheduleUpdate() {
	if (updateTimer) clearTimeout(updateTimer);
	updateTimer = setTimeout(() => {
		updateTimer = null;
		if (!asleep) sendUpdate(false);
		else scheduleUpdate();
	}, Math.max(1, opts.lt * 0.75) * 1000);
}

function register() {
	const q = [`ep=${encodeURIComponent(opts.ep)}`, `lt=${opts.lt}`, `lwm2m=${opts.lwm2m}`, `b=${opts.binding}`];
	if (opts.queue && opts.lwm2m === '1.1') q.push('Q');
	const payload = linkPayload();
	request('POST', '/rd', q.join('&'), payload, (err, code, loc) => {
		if (err) return emit({ event: 'register-failed', error: err.message });
		if (code !== '2.01') return emit({ event: 'register-failed', code });
		location = '/' + loc.join('/');
		announced = payload;
		emit({ event: 'registered', location, code });
		scheduleUpdate();
	});
}

function sendUpdate(withObjects) {
	if (!location) return emit({ event: 'update-failed', error: 'not registered' });
	const payload = linkPayload();
	const send = withObjects || payload !== announced ? payload : null;
	request('POST', location, '', send, (err, code) => {
		if (err) return emit({ event: 'update-failed', error: err.message });
		if (code === '4.04') {
			emit({ event: 'update-failed', code, note: 'registering again' });
			location = null;
			return register();
		}
		if (code !== '2.04') return emit({ event: 'update-failed', code });
		if (send) announced = send;
		emit({ event: 'updated', location, code, objects: send ? true : undefined });
		scheduleUpdate();
	});
}

function deregister(then) {
	if (!location) {
		emit({ event: 'deregister-failed', error: 'not registered' });
		return then && then();
	}
	const loc = location;
	request('DELETE', loc, '', null, (err, code) => {
		if (err) emit({ event: 'deregister-failed', error: err.message });
		else emit({ event: 'deregistered', location: loc, code });
		if (!err && code === '2.02') {
			location = null;
			if (updateTimer) clearTimeout(updateTimer);
			updateTimer = null;
		}
		if (then) then();
	});
}

// ---------------------------------------------------------------- commands
function setCommand(pathStr, valueStr) {
	const p = parsePath(pathStr || '');
	if (!p || p.ids.length < 3 || valueStr === undefined) return emit({ event: 'error', error: 'usage: set /O/I/R[/RI] VALUE' });
	const [o, i, r, ri] = p.ids;
	const rec = model.get(`${o}/${i}`);
	const d = def(o, r);
	if (!rec || !d || d.type === null || !(r in rec)) return emit({ event: 'error', error: `no value resource ${p.str}` });
	let v;
	try {
		v = parseText(d.type, valueStr, p.str);
	} catch (e) {
		return emit({ event: 'error', error: e.message });
	}
	if (d.multiple) {
		if (ri === undefined) return emit({ event: 'error', error: `${p.str} is multi-instance: give /O/I/R/RI` });
		rec[r][ri] = v;
	} else {
		if (ri !== undefined) return emit({ event: 'error', error: `${p.str} is single-instance` });
		putValue(o, i, r, v);
	}
	emit({ event: 'set', path: p.str, value: v });
	notifyChanged(o, i, r);
}

function command(line) {
	const t = line.trim();
	if (t === '' || t.startsWith('#')) return;
	const [cmd, ...rest] = t.split(/\s+/);
	switch (cmd) {
	case 'set': {
		const m = /^set\s+(\S+)\s+(.*)$/.exec(t);
		return m ? setCommand(m[1], m[2]) : setCommand(undefined, undefined);
	}
	case 'update': return sendUpdate(false);
	case 'objects':
		try { setObjects(rest.join('')); } catch (e) { return emit({ event: 'error', error: e.message }); }
		return sendUpdate(true);
	case 'register': return register();
	case 'deregister': return deregister();
	case 'sleep':
		asleep = true;
		return emit({ event: 'sleep' });
	case 'wake':
		asleep = false;
		emit({ event: 'wake' });
		for (const o of [...observers]) notifyOne(o, false);
		return sendUpdate(false);
	case 'readonly':
		readOnly.add(rest[0]);
		return emit({ event: 'readonly', path: rest[0] });
	case 'refuse':
		if (!/^[45]\.\d\d$/.test(rest[1] || '')) return emit({ event: 'error', error: 'usage: refuse /O/I/R CODE (4.xx or 5.xx)' });
		refused.set(rest[0], rest[1]);
		return emit({ event: 'refuse', path: rest[0], code: rest[1] });
	case 'silent':
		silent = rest[0] !== 'off';
		return emit({ event: 'silent', on: silent });
	case 'quit':
		emit({ event: 'quit' });
		return process.exit(0);
	default:
		return emit({ event: 'error', error: `unknown command: ${cmd}` });
	}
}

function watchCommandFile(file) {
	let pos = 0;
	let buf = '';
	try { fs.closeSync(fs.openSync(file, 'a')); } catch (e) { log(`cannot open ${file}: ${e.message}`); process.exit(111); }
	setInterval(() => {
		let st;
		try { st = fs.statSync(file); } catch (e) { return; }
		if (st.size < pos) pos = 0;
		if (st.size === pos) return;
		const fd = fs.openSync(file, 'r');
		const b = Buffer.alloc(st.size - pos);
		fs.readSync(fd, b, 0, b.length, pos);
		fs.closeSync(fd);
		pos = st.size;
		buf += b.toString('utf8');
		let k;
		while ((k = buf.indexOf('\n')) >= 0) {
			const line = buf.slice(0, k);
			buf = buf.slice(k + 1);
			command(line);
		}
	}, 30);
}

// ---------------------------------------------------------------- start
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

sock.on('error', (e) => {
	log(`socket: ${e.message}`);
	process.exit(111);
});
sock.bind(opts.port, '0.0.0.0', () => {
	server.listen(sock, () => {
		agent = new coap.Agent({ socket: sock });
		emit({ event: 'started', port: sock.address().port, ep: opts.ep, lwm2m: opts.lwm2m, binding: opts.binding, queue: queueMode });
		const rl = readline.createInterface({ input: process.stdin });
		rl.on('line', command);
		rl.on('close', () => {}); // stdin at EOF: keep running, commands may come from --commands
		if (opts.commands) watchCommandFile(opts.commands);
		register();
	});
});
