// The Node side of bench/codec.py: @tars/stream 2.0.3 encode/decode speed.
//
// Reads one JSON object on stdin:
//   {"request": {RequestPacket fields}, "order": {Bench.Order fields},
//    "rounds": N, "round_time": seconds, "warmup": seconds}
// (values in the JSON form of tests/interop/node/codec_peer.js: long as decimal strings,
// bytes as hex, maps as [[k, v], ...]) and prints one JSON object:
//   {"versions": {...}, "request": {"hex", "encode_us", "decode_us"}, "order": {...}}
// where *_us is the best round's time per operation, in microseconds.
//
// RequestPacket is @tars/rpc's own class (core/rpc-tars/RequestF.js, what its client and
// server use); Bench.Item and Bench.Order are written the way tars2node generates structs.
// Encode = new TarsOutputStream + _writeTo + toNodeBuffer(); decode = _readFrom of a
// TarsInputStream over a BinBuffer of the bytes.
'use strict';

const path = require('path');
const { createRequire } = require('module');

const peerRequire = createRequire(path.resolve(__dirname, '../tests/interop/node/package.json'));
const TarsStream = peerRequire('@tars/stream');
const RequestF = peerRequire('@tars/rpc/core/rpc-tars/RequestF.js').tars;

const Bench = {};

Bench.Item = function () {
  this.id = 0;
  this.name = '';
  this.price = 0;
  this.qty = 0;
  this.inStock = false;
  this.tags = new TarsStream.List(TarsStream.String);
  this._classname = 'Bench.Item';
};
Bench.Item._classname = 'Bench.Item';
Bench.Item._write = function (os, tag, value) { os.writeStruct(tag, value); };
Bench.Item._read = function (is, tag, def) { return is.readStruct(tag, true, def); };
Bench.Item._readFrom = function (is) {
  const tmp = new Bench.Item();
  tmp.id = is.readInt64(0, true, 0);
  tmp.name = is.readString(1, true, '');
  tmp.price = is.readDouble(2, true, 0);
  tmp.qty = is.readInt32(3, true, 0);
  tmp.inStock = is.readBoolean(4, true, false);
  tmp.tags = is.readList(5, true, TarsStream.List(TarsStream.String));
  return tmp;
};
Bench.Item.prototype._writeTo = function (os) {
  os.writeInt64(0, this.id);
  os.writeString(1, this.name);
  os.writeDouble(2, this.price);
  os.writeInt32(3, this.qty);
  os.writeBoolean(4, this.inStock);
  os.writeList(5, this.tags);
};

Bench.Order = function () {
  this.orderId = 0;
  this.customer = '';
  this.items = new TarsStream.List(Bench.Item);
  this.attrs = new TarsStream.Map(TarsStream.String, TarsStream.String);
  this.total = 0;
  this.sig = new TarsStream.BinBuffer();
  this._classname = 'Bench.Order';
};
Bench.Order._classname = 'Bench.Order';
Bench.Order._write = function (os, tag, value) { os.writeStruct(tag, value); };
Bench.Order._read = function (is, tag, def) { return is.readStruct(tag, true, def); };
Bench.Order._readFrom = function (is) {
  const tmp = new Bench.Order();
  tmp.orderId = is.readInt64(0, true, 0);
  tmp.customer = is.readString(1, true, '');
  tmp.items = is.readList(2, true, TarsStream.List(Bench.Item));
  tmp.attrs = is.readMap(3, true, TarsStream.Map(TarsStream.String, TarsStream.String));
  tmp.total = is.readDouble(4, true, 0);
  tmp.sig = is.readBytes(5, true, TarsStream.BinBuffer);
  return tmp;
};
Bench.Order.prototype._writeTo = function (os) {
  os.writeInt64(0, this.orderId);
  os.writeString(1, this.customer);
  os.writeList(2, this.items);
  os.writeMap(3, this.attrs);
  os.writeDouble(4, this.total);
  os.writeBytes(5, this.sig);
};

function stringMap(pairs) {
  const m = new TarsStream.Map(TarsStream.String, TarsStream.String);
  for (const [k, v] of pairs) m.insert(k, v);
  return m;
}

function bytesOf(hex) {
  return new TarsStream.BinBuffer(Buffer.from(hex, 'hex'));
}

function buildRequest(j) {
  const p = new RequestF.RequestPacket();
  p.iVersion = j.iVersion;
  p.cPacketType = j.cPacketType;
  p.iMessageType = j.iMessageType;
  p.iRequestId = j.iRequestId;
  p.sServantName = j.sServantName;
  p.sFuncName = j.sFuncName;
  p.sBuffer = bytesOf(j.sBuffer);
  p.iTimeout = j.iTimeout;
  p.context = stringMap(j.context);
  p.status = stringMap(j.status);
  return p;
}

function buildOrder(j) {
  const o = new Bench.Order();
  o.orderId = Number(j.orderId); // < 2^53: Number mode, as generated code uses
  o.customer = j.customer;
  for (const it of j.items) {
    const item = new Bench.Item();
    item.id = Number(it.id);
    item.name = it.name;
    item.price = it.price;
    item.qty = it.qty;
    item.inStock = it.inStock;
    for (const t of it.tags) item.tags.push(t);
    o.items.push(item);
  }
  o.attrs = stringMap(j.attrs);
  o.total = j.total;
  o.sig = bytesOf(j.sig);
  return o;
}

function encode(obj) {
  const os = new TarsStream.TarsOutputStream();
  obj._writeTo(os);
  return os.getBinBuffer().toNodeBuffer();
}

function decoder(Cls) {
  return (buf) => Cls._readFrom(new TarsStream.TarsInputStream(new TarsStream.BinBuffer(buf)));
}

let sink = null; // keeps results alive so the JIT cannot drop the work

function timeLoop(fn, arg, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink = fn(arg);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

// timeit-style: grow the loop count until one loop takes round_time, then keep the best of
// `rounds` loops of that size.
function bench(fn, arg, rounds, roundTime, warmup) {
  const warmEnd = Date.now() + warmup * 1000;
  while (Date.now() < warmEnd) timeLoop(fn, arg, 100);
  let n = 1;
  for (;;) {
    const t = timeLoop(fn, arg, n);
    if (t >= roundTime) break;
    n = t <= 0 ? n * 10 : Math.max(n * 2, Math.ceil((n * roundTime * 1.1) / t));
  }
  let best = Infinity;
  const all = [];
  for (let r = 0; r < rounds; r++) {
    const us = (timeLoop(fn, arg, n) / n) * 1e6;
    all.push(us);
    best = Math.min(best, us);
  }
  return { best_us: best, rounds_us: all, loops: n };
}

function run(spec) {
  const out = {
    versions: {
      node: process.version,
      stream: peerRequire('@tars/stream/package.json').version,
      rpc: peerRequire('@tars/rpc/package.json').version,
    },
  };
  const cases = {
    request: { obj: buildRequest(spec.request), Cls: RequestF.RequestPacket },
    order: { obj: buildOrder(spec.order), Cls: Bench.Order },
  };
  for (const [name, c] of Object.entries(cases)) {
    const bytes = encode(c.obj);
    const dec = decoder(c.Cls);
    dec(bytes); // must not throw
    const e = bench(encode, c.obj, spec.rounds, spec.round_time, spec.warmup);
    const d = bench(dec, bytes, spec.rounds, spec.round_time, spec.warmup);
    out[name] = {
      hex: bytes.toString('hex'),
      encode_us: e.best_us,
      decode_us: d.best_us,
      encode_rounds_us: e.rounds_us,
      decode_rounds_us: d.rounds_us,
    };
  }
  return out;
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const result = run(JSON.parse(input));
  process.stdout.write(JSON.stringify(result) + '\n');
  if (sink === undefined) process.stdout.write(''); // use sink
});
