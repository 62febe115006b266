// A hand-written @tars/rpc client for Tarsus's RPC interoperability tests (no tars2node):
// calls InteropRpc.Echo (see rpc_common.js) and prints what happened, one JSON line per case.
//
//   node rpc_client.js PORT OBJ VERSION CASE...
//
// VERSION is 1 (plain Tars) or 3 (TUP simple) or 2 (TUP complex). Each line is
//   {"case": C, "ok": true, "value": ...}                      the call succeeded
//   {"case": C, "ok": false, "code": N, "message": "..."}      the promise was rejected
// where code is the server's iRet or one of the SDK's local codes (-13001 timeout, ...).
'use strict';

const Tars = require('@tars/rpc');
const TarsStream = require('@tars/stream');
const { Point, Args, Results } = require('./rpc_common.js');

const [port, obj, versionArg, ...cases] = process.argv.slice(2);
const version = parseInt(versionArg, 10);

function EchoPrx() {
  this._name = undefined;
  this._worker = undefined;
}
const prx = Tars.client.stringToProxy(EchoPrx, obj + '@tcp -h 127.0.0.1 -p ' + port + ' -t 60000');
prx._worker.version = version;

// One call: encode the in-parameters with `write(Results)`, resolve with {out: Args, response}.
function invoke(func, write, options) {
  const params = new Results(version);
  if (write) write(params);
  const w = prx._worker;
  const p = params.tup
    ? w.tup_invoke(func, params.attr, options || {})
    : w.tars_invoke(func, params.buffer(), options || {});
  return p.then(function (data) {
    const rsp = data.response;
    const out = params.tup ? Args.fromTup(rsp.tup) : new Args(version, rsp.sBuffer);
    return { out: out, response: rsp };
  });
}

function divide(a, b) {
  return invoke('divide', (r) => r.int32(1, 'a', a).int32(2, 'b', b)).then(function ({ out }) {
    return { ret: out.int32(0, ''), quotient: out.int32(3, 'quotient'), remainder: out.int32(4, 'remainder') };
  });
}

const CASES = {
  echo: function () {
    return invoke('echo', (r) => r.string(1, 's', 'hello'), { context: { k: 'v' } }).then(
      function ({ out, response }) {
        return {
          ret: out.int32(0, ''),
          r: out.string(2, 'r'),
          context: response.context ? response.context.toObject() : null,
          version: response.iVersion,
        };
      });
  },
  // the dyeing option sets iMessageType 0x04 and status STATUS_DYED_KEY
  dyed: function () {
    return invoke('echo', (r) => r.string(1, 's', 'dyed'), { dyeing: { dyeing: true, key: 'user42' } })
      .then(({ out }) => out.string(2, 'r'));
  },
  divide: function () {
    return Promise.all([divide(17, 5), divide(1, 0)]).then((v) => ({ ok: v[0], zero: v[1] }));
  },
  // 200 calls in flight at once on one connection: replies must reach the right promise.
  many: function () {
    const calls = [];
    for (let i = 0; i < 200; i++) calls.push(divide(i * 7 + 3, 7));
    return Promise.all(calls).then((v) => v.map((x) => x.quotient));
  },
  // replies come back in a different order than the calls went out
  outoforder: function () {
    const sleep = (ms) => invoke('sleep', (r) => r.int32(1, 'ms', ms)).then(({ out }) => out.int32(0, ''));
    return Promise.all([sleep(300), sleep(1), sleep(150)]);
  },
  mirror: function () {
    const p = Point.from({ x: 1, y: -2, label: 'p\u00e9' });
    return invoke('mirror', (r) => r.point(1, 'p', p)).then(function ({ out }) {
      return { ret: out.point(0, '').toObject(), desc: out.string(2, 'desc') };
    });
  },
  nofunc: function () {
    return invoke('noSuchFunc', null).then(() => 'answered');
  },
  fail: function () {
    return invoke('fail', (r) => r.int32(1, 'how', 1)).then(({ out }) => out.int32(0, ''));
  },
  failcode: function () {
    return invoke('fail', (r) => r.int32(1, 'how', 2)).then(({ out }) => out.int32(0, ''));
  },
  timeout: function () {
    const before = prx._worker.timeout;
    prx._worker.timeout = 300;
    const p = invoke('sleep', (r) => r.int32(1, 'ms', 800)).then(({ out }) => out.int32(0, ''));
    prx._worker.timeout = before;
    return p;
  },
  oneway: function () {
    return invoke('note', (r) => r.string(1, 'text', 'one-way from node'), { packetType: 1 }).then(
      () => 'answered');
  },
  ping: function () {
    return invoke('tars_ping', null).then(function ({ response }) {
      return { version: response.iVersion, iRet: response.iRet };
    });
  },
};

function describe(e) {
  const err = (e && e.error) || (e && e.response && e.response.error);
  if (err) return { code: err.code, message: err.message };
  return { code: null, message: String((e && e.stack) || e) };
}

(async function main() {
  for (const name of cases) {
    let line;
    try {
      line = { case: name, ok: true, value: await CASES[name]() };
    } catch (e) {
      line = Object.assign({ case: name, ok: false }, describe(e));
    }
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  process.exit(0);
})();
