// The Tarsus node's agent for tars_nodejs services (docs/node.md "Packages").
//
//   node nodejs_agent.js <entry script> -c <config file>
//
// Upstream runs a Node.js service under node-agent, which gives the service TARS_CONFIG and,
// beside it, does what a TarsCpp server does by itself: ServerF.keepAlive to the node (so a
// hung service is noticed) and AdminObj on the config's <local> endpoint (so the node can ask
// it to shut down). @tars/rpc does neither. This script does both, in the service's own
// process and with the package's own @tars/rpc, then loads the entry: the pid the node
// started is the one that reports and the one that answers.
'use strict';

const path = require('path');
const { createRequire } = require('module');

const KEEPALIVE_MS = 10000; // as TarsCpp servers report (their keepAlive interval)
const ADMIN_ADAPTER = 'AdminAdapter';

function parseArgs(argv) {
  let entry = '';
  let config = process.env.TARS_CONFIG || '';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-c' || argv[i] === '--config') config = argv[++i] || '';
    else if (!entry) entry = argv[i];
  }
  if (!entry || !config) {
    console.error('usage: node nodejs_agent.js <entry script> -c <config file>');
    process.exit(2);
  }
  return { entry: path.resolve(entry), config: path.resolve(config) };
}

const { entry, config } = parseArgs(process.argv.slice(2));
process.env.TARS_CONFIG = config;
// the service's own modules, as its entry would require them
const serviceRequire = createRequire(entry);
const Tars = serviceRequire('@tars/rpc');
const TarsStream = serviceRequire('@tars/stream');
const Config = serviceRequire('@tars/utils').Config;

const conf = new Config();
conf.parseFile(config);
const app = conf.get('tars.application.server.app', '');
const server = conf.get('tars.application.server.server', '');
const nodeObj = conf.get('tars.application.server.node', '');
const local = conf.get('tars.application.server.local', '');
const adapters = conf.getDomain('tars.application.server', []);

// -- ServerF.keepAlive(ServerInfo) to the node ----------------------------------------------

function ServerFProxy() {
  this._name = undefined;
  this._worker = undefined;
}
ServerFProxy.prototype.keepAlive = function (adapter) {
  const info = {
    _writeTo(os) {
      os.writeString(0, app);
      os.writeString(1, server);
      os.writeInt32(2, process.pid);
      os.writeString(3, adapter);
    },
  };
  const os = new TarsStream.TarsOutputStream();
  os.writeStruct(1, info);
  return this._worker.tars_invoke('keepAlive', os.getBinBuffer());
};

function keepAlive(proxy) {
  for (const adapter of [...adapters, ADMIN_ADAPTER]) {
    proxy.keepAlive(adapter).catch((e) => {
      const why = e && e.response && e.response.error ? e.response.error.message : String(e);
      console.error(`keepAlive to ${nodeObj} failed: ${why}`);
    });
  }
}

// -- AdminObj: shutdown and notify -----------------------------------------------------------

function AdminImp() {}
AdminImp.prototype.initialize = function () {};
AdminImp.prototype.onDispatch = function (current, func) {
  const os = new TarsStream.TarsOutputStream();
  if (func === 'tars_ping') {
    current.doResponse(os.getBinBuffer());
    return 0;
  }
  if (func === 'shutdown') {
    current.doResponse(os.getBinBuffer());
    console.log('AdminObj.shutdown: exiting');
    setTimeout(() => process.exit(0), 50); // the answer goes out first
    return 0;
  }
  if (func === 'notify') {
    os.writeString(0, `${app}.${server} (nodejs): no commands besides shutdown`);
    current.doResponse(os.getBinBuffer());
    return 0;
  }
  return Tars.error.SERVER.FUNC_NOT_FOUND;
};

if (local) {
  Tars.server.createServer(AdminImp).start({
    name: ADMIN_ADAPTER,
    servant: 'AdminObj',
    endpoint: local,
    protocol: 'tars',
    maxconns: 64,
  });
}

// -- the service ----------------------------------------------------------------------------

serviceRequire(entry);

if (nodeObj) {
  const proxy = Tars.client.stringToProxy(ServerFProxy, nodeObj);
  keepAlive(proxy);
  setInterval(() => keepAlive(proxy), KEEPALIVE_MS);
}
