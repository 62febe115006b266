// The @tars/rpc client of bench/rpc_client.py: calls `int echo(string s, out string r)` on the
// bench's echo server in a closed loop and prints one JSON line with what it measured.
//
//   NODE_PATH=tests/interop/node/node_modules node bench/rpc_clients/node_client.js \
//       PORT SERVANT CONNS INFLIGHT PAYLOAD WARMUP DURATION [SERVER_PID]
//
// The proxy method is written as tars2node would generate it (there is no tars2node on npm):
// the string goes to tag 1 through TarsOutputStream, the reply is read back with
// TarsInputStream (return value tag 0, r tag 2). Each of CONNS connections is a Communicator
// of its own (one connection each, as the Tarsus client opens one per communicator), with
// INFLIGHT loops each awaiting one call after another. Every reply is checked (ret 0, r = s).
// Latency runs from the call to its promise resolving; throughput counts the replies inside the
// window. Run with TARS_CONFIG and TARS_MONITOR unset (no stat reports).
'use strict';
const fs = require('fs');
const Tars = require('@tars/rpc');
const TarsStream = require('@tars/stream');

const [port, servant, conns, inflight, payload, warmup, duration, serverPid] = process.argv.slice(2);
const obj = servant + '@tcp -h 127.0.0.1 -p ' + port + ' -t 60000';
const s = 'x'.repeat(Number(payload));
// Generous call timeouts in both clients: on a shared machine a stall shows as latency.
const TIMEOUT_MS = 30000;

function EchoProxy() {
  this._name = undefined;
  this._worker = undefined;
}
EchoProxy.prototype.echo = function (s) {
  const os = new TarsStream.TarsOutputStream();
  os.writeString(1, s);
  return this._worker.tars_invoke('echo', os.getBinBuffer(), {}).then(function (data) {
    const is = new TarsStream.TarsInputStream(data.response.sBuffer);
    return { ret: is.readInt32(0, true, 0), r: is.readString(2, true, '') };
  });
};

function clkTck() { return 100; } // USER_HZ on Linux
function cpuOf(pid) {
  try {
    const rest = fs.readFileSync('/proc/' + pid + '/stat', 'utf8').split(')').pop().trim().split(/\s+/);
    return (Number(rest[11]) + Number(rest[12])) / clkTck();
  } catch (e) { return null; }
}
function cpusBusy() {
  const out = [];
  for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (/^cpu\d/.test(line)) {
      const v = line.split(/\s+/).slice(1).map(Number);
      out.push((v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3] - v[4]) / clkTck());
    }
  }
  return out;
}
function selfCpu() { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }
const now = () => Number(process.hrtime.bigint()) / 1e9;

const stats = { phase: 'warmup', windowStart: 0, lat: [], completed: 0, verified: 0, errors: 0, firstErrors: [] };
function error(msg) {
  stats.errors += 1;
  if (stats.firstErrors.length < 5) stats.firstErrors.push(msg);
}

let stop = false;
async function worker(prx) {
  while (!stop) {
    const t = now();
    let res;
    try {
      res = await prx.echo(s);
    } catch (e) {
      const err = e && e.response && e.response.error;
      error('call failed: ' + (err ? err.code + ' ' + err.message : String(e)));
      continue;
    }
    const t2 = now();
    if (res.ret !== 0 || res.r !== s) {
      error('echo returned ' + res.ret + ' ' + JSON.stringify(res.r.slice(0, 40)));
      continue;
    }
    if (stats.phase === 'warmup') stats.verified += 1;
    else if (stats.phase === 'window' && t2 >= stats.windowStart) {
      stats.lat.push(t2 - t);
      stats.completed += 1;
    }
  }
}

const sleep = (sec) => new Promise((r) => setTimeout(r, sec * 1000));

function percentile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((q / 100) * (sorted.length - 1))))];
}

async function main() {
  const proxies = [];
  for (let i = 0; i < Number(conns); i++) {
    const prx = Tars.Communicator.New().stringToProxy(EchoProxy, obj);
    prx._worker.timeout = TIMEOUT_MS; // what a generated proxy's setTimeout does
    proxies.push(prx);
  }
  const workers = [];
  for (const prx of proxies) for (let j = 0; j < Number(inflight); j++) workers.push(worker(prx));
  await sleep(Number(warmup));
  const m = { t: now(), cpu: selfCpu(), server: cpuOf(serverPid), cpus: cpusBusy() };
  stats.windowStart = m.t;
  stats.phase = 'window';
  await sleep(Number(duration));
  const t = now();
  const e = { cpu: selfCpu(), server: cpuOf(serverPid), cpus: cpusBusy() };
  stats.phase = 'drain';
  stop = true;
  const left = await Promise.race([Promise.all(workers).then(() => 0), sleep(5).then(() => 1)]);
  const elapsed = t - m.t;
  const lat = stats.lat.map((x) => x * 1e6).sort((a, b) => a - b);
  const out = {
    calls_per_s: stats.completed / elapsed,
    completed: stats.completed,
    window_s: elapsed,
    p50_us: percentile(lat, 50),
    p99_us: percentile(lat, 99),
    verified: stats.verified,
    errors: stats.errors,
    first_errors: stats.firstErrors,
    pending_left: left,
    loadgen_cpu: (e.cpu - m.cpu) / elapsed,
    server_cpu: m.server === null || e.server === null ? null : (e.server - m.server) / elapsed,
    cpus_busy: e.cpus.map((b, i) => (b - m.cpus[i]) / elapsed),
    loop: 'node ' + process.version,
  };
  console.log(JSON.stringify(out));
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
