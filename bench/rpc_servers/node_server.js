// The @tars/rpc peer of bench/rpc.py: a hand-written servant (there is no tars2node on npm)
// for `int echo(string s, out string r)` that returns 0 and r = s.
//
//   NODE_PATH=tests/interop/node/node_modules node bench/rpc_servers/node_server.js PORT [SERVANT]
//
// Run with TARS_CONFIG and TARS_MONITOR unset (bench/rpc.py removes them).
'use strict';
const Tars = require('@tars/rpc');
const TarsStream = require('@tars/stream');

const port = Number(process.argv[2] || 18703);
const servant = process.argv[3] || 'Bench.RpcServer.EchoObj';

function EchoImp() {}
EchoImp.prototype.initialize = function () {};
EchoImp.prototype.onDispatch = function (current, func, buf) {
  if (func === 'tars_ping') {
    current.doResponse(new TarsStream.TarsOutputStream().getBinBuffer());
    return 0;
  }
  if (func !== 'echo') return Tars.error.SERVER.FUNC_NOT_FOUND;
  const is = new TarsStream.TarsInputStream(buf);
  const s = is.readString(1, true, '');
  const os = new TarsStream.TarsOutputStream();
  os.writeInt32(0, 0);
  os.writeString(2, s);
  current.doResponse(os.getBinBuffer());
  return 0;
};

const svr = Tars.server.createServer(EchoImp);
svr.start({
  name: servant + 'Adapter',
  servant: servant,
  endpoint: 'tcp -h 127.0.0.1 -p ' + port + ' -t 60000',
  protocol: 'tars',
  maxconns: 10000,
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
console.log('@tars/rpc echo on 127.0.0.1:' + port);
