// A hand-written @tars/rpc servant for Tarsus's RPC interoperability tests (no tars2node):
// InteropRpc.Echo (see rpc_common.js), plain Tars and TUP.
//
//   node rpc_server.js PORT [IDLE_MS]     serves Interop.NodeServer.EchoObj on 127.0.0.1:PORT
//
// The SDK gives no "listening" callback; the test polls the port. Behaviour the tests rely on:
//   echo      ret = length of s, r = "node:<s>|k=<context k>", reply context {from, seen}
//   divide    ret 0 and quotient/remainder, or ret -1 (the servant's own error) when b == 0
//   mirror    x and y swapped, label "mirrored:<label>", desc "<x>,<y>,<label>"
//   sleep     answers after ms milliseconds with ret = ms
//   note      remembers text (called one-way); lastNote returns it
//   fail      how 1: throws (the SDK answers -1 "BindAdapter Exception:..."),
//             how 2: onDispatch returns 12345 (the SDK answers iRet 12345)
//   tars_ping answered with an empty body (the SDK leaves it to hand-written servants)
'use strict';

const Tars = require('@tars/rpc');
const { Point, Args, Results } = require('./rpc_common.js');

const FUNC_NOT_FOUND = -3;
const KNOWN = new Set(['echo', 'divide', 'mirror', 'sleep', 'note', 'lastNote', 'fail']);
let lastNote = '';

function EchoImp() {}
EchoImp.prototype.initialize = function () {};

EchoImp.prototype.onDispatch = function (current, func, sBuffer) {
  const version = current.getRequestVersion();
  const reply = function (results) {
    current.doResponse(results.buffer());
  };
  if (func === 'tars_ping') {
    reply(new Results(1));
    return 0;
  }
  if (!KNOWN.has(func)) return FUNC_NOT_FOUND;
  const args = new Args(version, sBuffer);
  const out = new Results(version);
  switch (func) {
    case 'echo': {
      const s = args.string(1, 's');
      const ctx = current.getContext();
      const k = ctx && ctx.get('k') !== undefined ? ctx.get('k') : '';
      current.setResponseContext({ from: 'node', seen: k });
      reply(out.int32(0, '', Buffer.byteLength(s)).string(2, 'r', 'node:' + s + '|k=' + k));
      return 0;
    }
    case 'divide': {
      const a = args.int32(1, 'a');
      const b = args.int32(2, 'b');
      if (b === 0) reply(out.int32(0, '', -1).int32(3, 'quotient', 0).int32(4, 'remainder', 0));
      else reply(out.int32(0, '', 0).int32(3, 'quotient', Math.trunc(a / b)).int32(4, 'remainder', a % b));
      return 0;
    }
    case 'mirror': {
      const p = args.point(1, 'p');
      const m = Point.from({ x: p.y, y: p.x, label: 'mirrored:' + p.label });
      reply(out.point(0, '', m).string(2, 'desc', p.x + ',' + p.y + ',' + p.label));
      return 0;
    }
    case 'sleep': {
      const ms = args.int32(1, 'ms');
      setTimeout(function () { reply(out.int32(0, '', ms)); }, ms);
      return 0;
    }
    case 'note':
      lastNote = args.string(1, 'text');
      reply(out); // one-way: the SDK sends nothing
      return 0;
    case 'lastNote':
      reply(out.string(0, '', lastNote));
      return 0;
    case 'fail': {
      const how = args.int32(1, 'how');
      if (how === 1) throw new Error('node servant failed');
      if (how === 2) return 12345;
      reply(out.int32(0, '', 0));
      return 0;
    }
  }
  return FUNC_NOT_FOUND;
};

const port = process.argv[2];
const idle = process.argv[3] || '60000';
const svr = Tars.server.createServer(EchoImp);
svr.start({
  name: 'Interop.NodeServer.EchoObjAdapter',
  servant: 'Interop.NodeServer.EchoObj',
  endpoint: 'tcp -h 127.0.0.1 -p ' + port + ' -t ' + idle,
  protocol: 'tars',
  maxconns: 1000,
});
// The parent ends us by closing stdin (or killing us).
process.stdin.on('end', function () { process.exit(0); });
process.stdin.resume();
