// The Node Tars SDK (@tars/stream) as a codec peer for Tarsus's interoperability tests.
//
// A long-lived process speaking line-delimited JSON: one request per stdin line, one
// response per stdout line, in order. It never exits on a bad request; it answers
// {"error": "..."} instead. It ends when stdin closes.
//
// Requests
//   {"op":"ping"}                               -> {"ok":true,"versions":{...}}
//   {"op":"encode","schema":S,"value":V}        -> {"hex":H}  V written as a top-level struct
//                                                  (its fields back to back: _writeTo, no wrapper)
//   {"op":"decode","schema":S,"hex":H}          -> {"value":V}
//   {"op":"tup_encode","version":3,"items":[{"name":N,"type":T,"value":V}, ...]}
//                                               -> {"hex":H}  UniAttribute.encode() (the sBuffer)
//   {"op":"tup_decode","version":3,"hex":H,"items":[{"name":N,"type":T}, ...]}
//                                               -> {"values":{N:V,...},"names":[...]} (names: every key present)
//   {"op":"rpc_encode","packet":"RequestPacket"|"ResponsePacket","value":V}
//   {"op":"rpc_decode","packet":"RequestPacket"|"ResponsePacket","hex":H}
//       the same, through @tars/rpc's own RequestF.js (the classes its client and server use)
//
// Schemas
//   S = {"name":"Mod.Struct","fields":[{"tag":0,"name":"a","required":true,"type":T,"default":V?}]}
//   T = {"kind":"bool|byte|short|int|long|unsigned byte|unsigned short|unsigned int|float|double|string|bytes"}
//     | {"kind":"vector","elem":T} | {"kind":"map","key":T,"value":T} | {"kind":"enum"}
//     | {"kind":"struct","schema":S}
//
// JSON values
//   integers are numbers; long values are always written back as decimal strings (int64 is
//   read and written with @tars/stream's bString mode, exact to 2^63) and accepted as strings
//   or numbers; float/double are numbers, or "NaN" / "Infinity" / "-Infinity"; bytes are hex
//   strings; maps are [[k, v], ...] lists; structs are objects keyed by field name; enums
//   are their integer values.
'use strict';

const readline = require('readline');
const TarsStream = require('@tars/stream');

let RequestF = null; // loaded on first rpc_* request
function requestF() {
  if (RequestF === null) RequestF = require('@tars/rpc/core/rpc-tars/RequestF.js').tars;
  return RequestF;
}

// ---------------------------------------------------------------------------------------------
// Type codecs. Each one knows the @tars/stream "proto" (what List/Map/UniAttribute expect),
// how to write and read a field, and how to convert between JSON and the SDK's value form.

function floatFromJson(v) {
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (typeof v !== 'number') throw new Error('expected a number, got ' + JSON.stringify(v));
  return v;
}

function floatToJson(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

function intFromJson(v) {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new Error('expected an integer, got ' + JSON.stringify(v));
}

function scalar(proto, write, read, fromJson, toJson, zero) {
  return {
    proto: proto,
    bValue: 0,
    write: write,
    read: read,
    toNode: fromJson,
    fromNode: toJson,
    zero: function () { return zero; },
  };
}

const SCALARS = {
  'bool': scalar(TarsStream.Boolean,
    (os, tag, v) => os.writeBoolean(tag, v),
    (is, tag, req, def) => is.readBoolean(tag, req, def),
    (v) => { if (typeof v !== 'boolean') throw new Error('expected a bool, got ' + JSON.stringify(v)); return v; },
    (v) => v === true || v === 1, false),
  'byte': scalar(TarsStream.Int8,
    (os, tag, v) => os.writeInt8(tag, v),
    (is, tag, req, def) => is.readInt8(tag, req, def),
    intFromJson, Number, 0),
  'short': scalar(TarsStream.Int16,
    (os, tag, v) => os.writeInt16(tag, v),
    (is, tag, req, def) => is.readInt16(tag, req, def),
    intFromJson, Number, 0),
  'int': scalar(TarsStream.Int32,
    (os, tag, v) => os.writeInt32(tag, v),
    (is, tag, req, def) => is.readInt32(tag, req, def),
    intFromJson, Number, 0),
  'unsigned byte': scalar(TarsStream.UInt8,
    (os, tag, v) => os.writeUInt8(tag, v),
    (is, tag, req, def) => is.readUInt8(tag, req, def),
    intFromJson, Number, 0),
  'unsigned short': scalar(TarsStream.UInt16,
    (os, tag, v) => os.writeUInt16(tag, v),
    (is, tag, req, def) => is.readUInt16(tag, req, def),
    intFromJson, Number, 0),
  'unsigned int': scalar(TarsStream.UInt32,
    (os, tag, v) => os.writeUInt32(tag, v),
    (is, tag, req, def) => is.readUInt32(tag, req, def),
    intFromJson, Number, 0),
  'float': scalar(TarsStream.Float,
    (os, tag, v) => os.writeFloat(tag, v),
    (is, tag, req, def) => is.readFloat(tag, req, def),
    floatFromJson, floatToJson, 0),
  'double': scalar(TarsStream.Double,
    (os, tag, v) => os.writeDouble(tag, v),
    (is, tag, req, def) => is.readDouble(tag, req, def),
    floatFromJson, floatToJson, 0),
  'string': scalar(TarsStream.String,
    (os, tag, v) => os.writeString(tag, v),
    (is, tag, req, def) => is.readString(tag, req, def),
    (v) => { if (typeof v !== 'string') throw new Error('expected a string, got ' + JSON.stringify(v)); return v; },
    String, ''),
  'enum': scalar(TarsStream.Enum,
    (os, tag, v) => os.writeInt32(tag, v),
    (is, tag, req, def) => is.readInt32(tag, req, def),
    intFromJson, Number, 0),
};

// int64 through bString mode: exact over the whole range (values are decimal strings).
SCALARS['long'] = {
  proto: TarsStream.Int64,
  bValue: 1,
  write: (os, tag, v) => os.writeInt64(tag, v, true),
  read: (is, tag, req, def) => is.readInt64(tag, req, def, true),
  toNode: (v) => {
    if (typeof v === 'number' && Number.isInteger(v)) return String(v);
    if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return v;
    throw new Error('expected an integer or a decimal string, got ' + JSON.stringify(v));
  },
  fromNode: (v) => String(v),
  zero: () => '0',
};

SCALARS['bytes'] = {
  proto: TarsStream.BinBuffer,
  bValue: 0,
  write: (os, tag, v) => os.writeBytes(tag, v),
  read: (is, tag, req, def) => is.readBytes(tag, req, TarsStream.BinBuffer),
  toNode: (v) => {
    if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v)) {
      throw new Error('expected a hex string, got ' + JSON.stringify(v).slice(0, 80));
    }
    return new TarsStream.BinBuffer(Buffer.from(v, 'hex'));
  },
  fromNode: (v) => v.toNodeBuffer().toString('hex'),
  zero: () => new TarsStream.BinBuffer(),
};

function vectorCodec(T) {
  const elem = typeCodec(T.elem);
  const listProto = () => TarsStream.List(elem.proto, elem.bValue);
  return {
    proto: listProto(),
    bValue: 0,
    write: (os, tag, v) => os.writeList(tag, v),
    read: (is, tag, req, def) => is.readList(tag, req, listProto()),
    toNode: (v) => {
      if (!Array.isArray(v)) throw new Error('expected a list, got ' + JSON.stringify(v).slice(0, 80));
      const list = listProto();
      for (const x of v) list.push(elem.toNode(x));
      return list;
    },
    fromNode: (v) => v.value.map(elem.fromNode),
    zero: listProto,
  };
}

function mapCodec(T) {
  const key = typeCodec(T.key);
  const value = typeCodec(T.value);
  const mapProto = () => TarsStream.Map(key.proto, value.proto, key.bValue, value.bValue);
  return {
    proto: mapProto(),
    bValue: 0,
    write: (os, tag, v) => os.writeMap(tag, v),
    read: (is, tag, req, def) => is.readMap(tag, req, mapProto()),
    toNode: (v) => {
      if (!Array.isArray(v)) throw new Error('expected a list of [key, value] pairs');
      const map = mapProto();
      for (const kv of v) {
        if (!Array.isArray(kv) || kv.length !== 2) throw new Error('expected a [key, value] pair');
        map.insert(key.toNode(kv[0]), value.toNode(kv[1]));
      }
      return map;
    },
    fromNode: (v) => {
      const out = [];
      v.forEach((k, x) => { out.push([key.fromNode(k), value.fromNode(x)]); }, key.bValue);
      return out;
    },
    zero: mapProto,
  };
}

// Struct constructors are built once per schema (keyed by the schema's JSON text), with the
// same shape tars2node generates: a constructor with _classname, static _write/_read/_readFrom
// /new/create, and prototype _writeTo/_equal/_genKey.
const structCache = new Map();

function structCodec(S) {
  const cacheKey = JSON.stringify(S);
  let codec = structCache.get(cacheKey);
  if (codec) return codec;

  if (!S || typeof S.name !== 'string' || !Array.isArray(S.fields)) {
    throw new Error('bad struct schema: ' + JSON.stringify(S).slice(0, 120));
  }
  const fields = S.fields.map((f) => {
    const t = typeCodec(f.type);
    const hasDefault = f.default !== undefined && f.default !== null;
    return {
      tag: f.tag,
      name: f.name,
      required: !!f.required,
      t: t,
      makeDefault: hasDefault ? () => t.toNode(f.default) : t.zero,
    };
  });
  fields.sort((a, b) => a.tag - b.tag);

  const Ctor = function () {
    for (const f of fields) this[f.name] = f.makeDefault();
    this._classname = S.name;
  };
  Ctor._classname = S.name;
  Ctor._write = function (os, tag, value) { os.writeStruct(tag, value); };
  Ctor._read = function (is, tag, def) { return is.readStruct(tag, true, def); };
  Ctor._readFrom = function (is) {
    const tmp = new Ctor();
    for (const f of fields) tmp[f.name] = f.t.read(is, f.tag, f.required, tmp[f.name]);
    return tmp;
  };
  Ctor.new = function () { return new Ctor(); };
  Ctor.create = function (is) { return Ctor._readFrom(is); };
  Ctor.prototype._writeTo = function (os) {
    for (const f of fields) f.t.write(os, f.tag, this[f.name]);
  };
  // Struct-keyed maps (TarsStream.Map picks its MultiMap when the key has _equal).
  Ctor.prototype._genKey = function () { return JSON.stringify(toJson(this)); };
  Ctor.prototype._equal = function (other) { return this._genKey() === other._genKey(); };

  function toJson(obj) {
    const out = {};
    for (const f of fields) out[f.name] = f.t.fromNode(obj[f.name]);
    return out;
  }

  codec = {
    Ctor: Ctor,
    proto: Ctor,
    bValue: 0,
    write: (os, tag, v) => os.writeStruct(tag, v),
    read: (is, tag, req, def) => is.readStruct(tag, req, Ctor),
    toNode: (v) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new Error('expected an object for ' + S.name);
      }
      const obj = new Ctor();
      for (const f of fields) {
        if (Object.prototype.hasOwnProperty.call(v, f.name)) {
          try {
            obj[f.name] = f.t.toNode(v[f.name]);
          } catch (e) {
            throw new Error(S.name + '.' + f.name + ': ' + e.message);
          }
        }
      }
      return obj;
    },
    fromNode: toJson,
    zero: () => new Ctor(),
  };
  structCache.set(cacheKey, codec);
  return codec;
}

function typeCodec(T) {
  if (!T || typeof T.kind !== 'string') throw new Error('bad type: ' + JSON.stringify(T));
  const s = SCALARS[T.kind];
  if (s) return s;
  switch (T.kind) {
    case 'vector': return vectorCodec(T);
    case 'map': return mapCodec(T);
    case 'struct': return structCodec(T.schema);
  }
  throw new Error('unknown type kind: ' + T.kind);
}

// ---------------------------------------------------------------------------------------------
// TUP (UniAttribute): values go through its public typed writers and readers.

function tupWrite(ua, name, T, nodeValue) {
  switch (T.kind) {
    case 'bool': return ua.writeBoolean(name, nodeValue);
    case 'byte': return ua.writeInt8(name, nodeValue);
    case 'short': return ua.writeInt16(name, nodeValue);
    case 'int': case 'enum': return ua.writeInt32(name, nodeValue);
    case 'long': return ua.writeInt64(name, nodeValue, true);
    case 'unsigned byte': return ua.writeUInt8(name, nodeValue);
    case 'unsigned short': return ua.writeUInt16(name, nodeValue);
    case 'unsigned int': return ua.writeUInt32(name, nodeValue);
    case 'float': return ua.writeFloat(name, nodeValue);
    case 'double': return ua.writeDouble(name, nodeValue);
    case 'string': return ua.writeString(name, nodeValue);
    case 'bytes': return ua.writeBytes(name, nodeValue);
    case 'struct': return ua.writeStruct(name, nodeValue);
    case 'vector': return ua.writeList(name, nodeValue);
    case 'map': return ua.writeMap(name, nodeValue);
  }
  throw new Error('unknown type kind: ' + T.kind);
}

function tupRead(ua, name, T, codec) {
  switch (T.kind) {
    case 'bool': return ua.readBoolean(name);
    case 'byte': return ua.readInt8(name);
    case 'short': return ua.readInt16(name);
    case 'int': case 'enum': return ua.readInt32(name);
    case 'long': return ua.readInt64(name, undefined, true);
    case 'unsigned byte': return ua.readUInt8(name);
    case 'unsigned short': return ua.readUInt16(name);
    case 'unsigned int': return ua.readUInt32(name);
    case 'float': return ua.readFloat(name);
    case 'double': return ua.readDouble(name);
    case 'string': return ua.readString(name);
    case 'bytes': return ua.readBytes(name);
    case 'struct': return ua.readStruct(name, codec.Ctor);
    case 'vector': return ua.readList(name, codec.proto);
    case 'map': return ua.readMap(name, codec.proto);
  }
  throw new Error('unknown type kind: ' + T.kind);
}

function newUniAttribute(version) {
  const ua = new TarsStream.UniAttribute();
  ua.tupVersion = version === undefined ? TarsStream.UniAttribute.TUP_SIMPLE : version;
  return ua;
}

// ---------------------------------------------------------------------------------------------

function toHex(binBuffer) {
  return binBuffer.toNodeBuffer().toString('hex');
}

function binBuffer(hex) {
  if (typeof hex !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Error('"hex" must be a hex string');
  return new TarsStream.BinBuffer(Buffer.from(hex, 'hex'));
}

function inputStream(hex) {
  return new TarsStream.TarsInputStream(binBuffer(hex));
}

const RPC_SCHEMAS = {
  RequestPacket: {
    name: 'tars.RequestPacket',
    fields: [
      { tag: 1, name: 'iVersion', type: { kind: 'short' } },
      { tag: 2, name: 'cPacketType', type: { kind: 'byte' } },
      { tag: 3, name: 'iMessageType', type: { kind: 'int' } },
      { tag: 4, name: 'iRequestId', type: { kind: 'int' } },
      { tag: 5, name: 'sServantName', type: { kind: 'string' } },
      { tag: 6, name: 'sFuncName', type: { kind: 'string' } },
      { tag: 7, name: 'sBuffer', type: { kind: 'bytes' } },
      { tag: 8, name: 'iTimeout', type: { kind: 'int' } },
      { tag: 9, name: 'context', type: { kind: 'map', key: { kind: 'string' }, value: { kind: 'string' } } },
      { tag: 10, name: 'status', type: { kind: 'map', key: { kind: 'string' }, value: { kind: 'string' } } },
    ],
  },
  ResponsePacket: {
    name: 'tars.ResponsePacket',
    fields: [
      { tag: 1, name: 'iVersion', type: { kind: 'short' } },
      { tag: 2, name: 'cPacketType', type: { kind: 'byte' } },
      { tag: 3, name: 'iRequestId', type: { kind: 'int' } },
      { tag: 4, name: 'iMessageType', type: { kind: 'int' } },
      { tag: 5, name: 'iRet', type: { kind: 'int' } },
      { tag: 6, name: 'sBuffer', type: { kind: 'bytes' } },
      { tag: 7, name: 'status', type: { kind: 'map', key: { kind: 'string' }, value: { kind: 'string' } } },
      { tag: 8, name: 'sResultDesc', type: { kind: 'string' } },
      { tag: 9, name: 'context', type: { kind: 'map', key: { kind: 'string' }, value: { kind: 'string' } } },
    ],
  },
};

function rpcClass(packet) {
  const schema = RPC_SCHEMAS[packet];
  if (!schema) throw new Error('unknown packet: ' + packet);
  return { Cls: requestF()[packet], codec: structCodec(schema) };
}

function handle(req) {
  switch (req.op) {
    case 'ping':
      return {
        ok: true,
        versions: {
          node: process.version,
          stream: require('@tars/stream/package.json').version,
          rpc: require('@tars/rpc/package.json').version,
        },
      };
    case 'encode': {
      const codec = structCodec(req.schema);
      const obj = codec.toNode(req.value);
      const os = new TarsStream.TarsOutputStream();
      obj._writeTo(os);
      return { hex: toHex(os.getBinBuffer()) };
    }
    case 'decode': {
      const codec = structCodec(req.schema);
      return { value: codec.fromNode(codec.Ctor._readFrom(inputStream(req.hex))) };
    }
    case 'tup_encode': {
      const ua = newUniAttribute(req.version);
      for (const item of req.items) {
        const codec = typeCodec(item.type);
        tupWrite(ua, item.name, item.type, codec.toNode(item.value));
      }
      return { hex: toHex(ua.encode()) };
    }
    case 'tup_decode': {
      const ua = newUniAttribute(req.version);
      ua.decode(binBuffer(req.hex));
      const names = [];
      (ua.tupVersion === TarsStream.UniAttribute.TUP_SIMPLE ? ua._data : ua._mmap)
        .forEach((k) => { names.push(k); });
      const values = {};
      for (const item of req.items || []) {
        const codec = typeCodec(item.type);
        values[item.name] = codec.fromNode(tupRead(ua, item.name, item.type, codec));
      }
      return { values: values, names: names };
    }
    case 'rpc_encode': {
      const { Cls, codec } = rpcClass(req.packet);
      // Fill the SDK's own class from the schema-built one, then let its _writeTo write it.
      const tmp = codec.toNode(req.value);
      const obj = new Cls();
      for (const f of RPC_SCHEMAS[req.packet].fields) obj[f.name] = tmp[f.name];
      const os = new TarsStream.TarsOutputStream();
      obj._writeTo(os);
      return { hex: toHex(os.getBinBuffer()) };
    }
    case 'rpc_decode': {
      const { Cls, codec } = rpcClass(req.packet);
      return { value: codec.fromNode(Cls._readFrom(inputStream(req.hex))) };
    }
  }
  throw new Error('unknown op: ' + JSON.stringify(req.op));
}

function describe(e) {
  if (e instanceof Error || (e && typeof e.message === 'string')) {
    const kind = e.constructor && e.constructor !== Error && e.constructor.name ? e.constructor.name + ': ' : '';
    const code = e.code !== undefined ? ' (code ' + e.code + ')' : '';
    return kind + e.message + code;
  }
  return String(e);
}

function respond(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

process.on('uncaughtException', (e) => {
  process.stderr.write('codec_peer: uncaught: ' + (e && e.stack ? e.stack : String(e)) + '\n');
});

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    respond({ error: 'bad JSON request: ' + describe(e) });
    return;
  }
  let res;
  try {
    res = handle(req);
  } catch (e) {
    res = { error: describe(e) };
  }
  respond(res);
});
rl.on('close', () => process.exit(0));
