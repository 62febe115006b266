// A hand-written @tars/rpc client that finds its server through a Tars registry (no tars2node):
// the proxy is made on the bare name (no "@endpoint"), so @tars/rpc asks the locator.
//
//   node registry_client.js LOCATOR_PORT OBJ N [--refresh-ms=MS] [--timeout-ms=MS]
//                           [--set=NAME.AREA.GROUP] [--interactive]
//
// The locator is 'tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p LOCATOR_PORT', set with
// Tars.client.setProperty('locator', ...). OBJ is e.g. Test.HelloServer.HelloObj (interface
// Test.Hello: `int sayHello(string name, out string greeting)`). A round calls sayHello N times,
// one call after the other, with name "node-<round>-<i>", and prints one JSON line:
//
//   {"ok": true, "results": [{"ret": 0, "greeting": "..."}, ...], "endpoints": ["host:port", ...]}
//   {"ok": false, "code": N, "message": "...", "results": [...the calls that succeeded...]}
//
// "endpoints" is the SDK's current endpoint list for OBJ (what the registry last told it).
// Without --interactive one round runs and the exit status is 0 only if it succeeded. With
// --interactive, a further round runs for each line read on stdin (the line is N); the
// process exits when stdin ends, non-zero if any round failed.
//
// How @tars/rpc uses the locator (read in node_modules/@tars/rpc/core/client/EndpointManager.js
// and node_modules/@tars/registry/index.js, a dependency of @tars/rpc): on a call, when its
// list is due for refresh, it calls QueryF.findObjectByIdInSameGroup(OBJ) on the locator
// (findObjectByIdInSameSet(OBJ, setId) in set mode), with the context {node_name: <local IP>};
// it connects to the *active* list and drops endpoints no longer in it. The refresh interval
// is 60 s (10 s after an empty active list, which leaves the old list in place; 2 s after a
// failed query). No property sets the 60 s: --refresh-ms changes the EndpointManager's field.
// --timeout-ms sets the 'timeout' property (the call timeout, default 3000 ms); --set turns on
// set mode ('setdivision' then 'enableset' = 'y': the other order is reset to 'n' by the SDK).
'use strict';

const Tars = require('@tars/rpc');
const TarsStream = require('@tars/stream');
const readline = require('readline');

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const [port, obj, countArg] = positional;
if (!port || !obj || !countArg) {
  process.stderr.write('usage: node registry_client.js LOCATOR_PORT OBJ N [--refresh-ms=MS] ' +
    '[--timeout-ms=MS] [--set=NAME.AREA.GROUP] [--interactive]\n');
  process.exit(2);
}
const interactive = flags.includes('--interactive');
function flag(name) {
  const f = flags.find((a) => a.startsWith('--' + name + '='));
  return f === undefined ? undefined : f.slice(name.length + 3);
}

Tars.client.setProperty('locator', 'tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p ' + port);
if (flag('timeout-ms')) Tars.client.setProperty('timeout', parseInt(flag('timeout-ms'), 10));
if (flag('set')) {
  Tars.client.setProperty('setdivision', flag('set'));
  Tars.client.setProperty('enableset', 'y');
}

// Test.Hello, as tars2node would generate it
function HelloPrx() {
  this._name = undefined;
  this._worker = undefined;
}
HelloPrx.prototype.sayHello = function (name) {
  const os = new TarsStream.TarsOutputStream();
  os.writeString(1, name);
  return this._worker.tars_invoke('sayHello', os.getBinBuffer(), {}).then(function (data) {
    const is = new TarsStream.TarsInputStream(data.response.sBuffer);
    return { ret: is.readInt32(0, true, 0), greeting: is.readString(2, true, '') };
  });
};

const prx = Tars.client.stringToProxy(HelloPrx, obj);
const manager = prx._worker._manager;
if (flag('refresh-ms')) manager._iRefreshInterval = parseInt(flag('refresh-ms'), 10);

function endpoints() {
  return manager.getAllAdapters().map((a) => a._endpoint.sHost + ':' + a._endpoint.iPort);
}

function describe(e) {
  const err = (e && e.error) || (e && e.response && e.response.error);
  if (err) return { code: err.code, message: err.message };
  return { code: null, message: String((e && e.stack) || e) };
}

let round = 0;
async function runRound(n) {
  const results = [];
  round += 1;
  try {
    for (let i = 0; i < n; i++) results.push(await prx.sayHello('node-' + round + '-' + i));
    return { ok: true, results: results, endpoints: endpoints() };
  } catch (e) {
    return Object.assign({ ok: false }, describe(e), { results: results, endpoints: endpoints() });
  }
}

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

(async function main() {
  let failed = false;
  const first = await runRound(parseInt(countArg, 10));
  emit(first);
  failed = failed || !first.ok;
  if (interactive) {
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      if (!line.trim()) continue;
      const r = await runRound(parseInt(line, 10));
      emit(r);
      failed = failed || !r.ok;
    }
  }
  process.exit(failed ? 1 : 0);
})();
