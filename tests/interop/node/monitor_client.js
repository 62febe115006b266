// Upstream's Node monitor, @tars/monitor, reports into our StatObj and PropertyObj: no Tarsus
// code involved.
//
//   node monitor_client.js TARS_CONFIG_FILE
//
// TARS_CONFIG_FILE is a service config as a node writes it (client: stat, property,
// modulename, report-interval). Stat reports as a server of Test.NodeHello.sayHello would
// (three successes of 3, 7 and 70 ms, one error, one timeout); properties "orders" (Sum, Max)
// and "queue" (Avg). Then it waits for both reports to be sent and prints {"ok": true}.
//
// @tars/monitor's property module takes the config's report-interval as it is; its stat
// module only takes one of 10 s or more (its reportIntervalMin). The script shortens the stat
// interval through the exported field so the test needs no 10 s wait.
'use strict';

const monitor = require('@tars/monitor');

const config = process.argv[2];
monitor.stat.init(config);
monitor.property.init(config);
monitor.stat.reportInterval = 300;

const headers = {
    masterName: 'Test.NodeCaller',
    slaveName: 'Test.NodeHello',
    interfaceName: 'sayHello',
    masterIp: '127.0.0.1',
    slaveIp: '127.0.0.1',
    slavePort: 9001,
    bFromClient: false,
    returnValue: 0,
};
for (const ms of [3, 7, 70]) {
    monitor.stat.report(headers, monitor.stat.TYPE.SUCCESS, ms);
}
monitor.stat.report(Object.assign({}, headers, { returnValue: -1 }), monitor.stat.TYPE.ERROR);
monitor.stat.report(Object.assign({}, headers, { returnValue: -7 }), monitor.stat.TYPE.TIMEOUT);

const POLICY = monitor.property.POLICY;
const orders = monitor.property.create('orders', [new POLICY.Sum(), new POLICY.Max()]);
orders.report(4);
orders.report(9);
const queue = monitor.property.create('queue', [new POLICY.Avg()]);
queue.report(2);
queue.report(6);

setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: true }) + '\n');
    process.exit(0);
}, 1500);
