// Upstream's Node reporters, @tars/notify and @tars/winston-tars's remote transport, run
// against our NotifyObj and LogObj: no Tarsus code involved.
//
//   node notify_log_client.js TARS_CONFIG_FILE
//
// TARS_CONFIG_FILE is a service config as a node writes it (tars.application.server: app,
// server, notify = the NotifyObj proxy, log = the LogObj proxy). The script reports four
// events through @tars/notify (report with and without a marker, notify at WARN and ERROR)
// and logs three lines through a winston logger whose only transport is TarsRemote (file
// "nodelog", by day), then waits for both to be sent and prints {"ok": true}.
'use strict';

const winston = require('winston');
const notify = require('@tars/notify');
const WinstonTars = require('@tars/winston-tars');

const config = process.argv[2];
notify.init(config);
notify.report('[alarm] node: the disk is almost full');
notify.report('node: started');
notify.notify('node: queue half full', notify.LEVEL.NOTIFYWARN);
notify.notify('node: cannot reach the bank', notify.LEVEL.NOTIFYERROR);

const logger = new (winston.Logger)({
    transports: [new WinstonTars.TarsRemote({ tarsConfig: config, filename: 'nodelog', interval: 100 })],
});
logger.info('first line from winston');
logger.warn('second line', { order: 42 });
logger.error('third line');

// both send in the background (notify at once, the transport after its 100 ms interval)
setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: true }) + '\n');
    process.exit(0);
}, 1500);
