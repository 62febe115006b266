// Upstream's Node config client, @tars/config (what a Node Tars service uses to read its
// business config files), run against a config center: no Tarsus code involved.
//
//   node config_client.js TARS_CONFIG_FILE
//
// TARS_CONFIG_FILE is a service config as a node writes it (tars.application.server: app,
// server, localip, config = the ConfigObj proxy; tars.application.enableset/setdivision). The
// script loads, one after the other, and prints one JSON line with what each gave:
//   server   loadServerConfig({format: TEXT})        (<server>.conf, the merged text)
//   parsed   loadServerConfig()                       (the same, parsed as TC_Config by the SDK)
//   app      loadConfig("common.conf", {location: APP, format: TEXT})
//   list     loadList()                               (ListAllConfigByInfo)
//   missing  loadConfig("missing.conf", {format: TEXT})
// {"ok": true, ...} or {"ok": false, "message": "..."}; the exit status is 0 only when ok.
'use strict';

const TarsConfig = require('@tars/config');

async function main() {
    const config = new TarsConfig(process.argv[2]);
    const out = { ok: true };
    const TEXT = { format: config.FORMAT.TEXT };
    out.server = await config.loadServerConfig(TEXT);
    out.parsed = await config.loadServerConfig();
    out.app = await config.loadConfig('common.conf', { location: config.LOCATION.APP, format: config.FORMAT.TEXT });
    out.list = await config.loadList();
    try {
        out.missing = { text: await config.loadConfig('missing.conf', TEXT) };
    } catch (e) {
        out.missing = { error: String((e && e.response && e.response.error) || e) };
    }
    return out;
}

main().then(
    (out) => {
        process.stdout.write(JSON.stringify(out) + '\n');
        process.exit(0);
    },
    (e) => {
        const message = (e && e.response && e.response.error) ? JSON.stringify(e.response.error) : String(e && e.stack || e);
        process.stdout.write(JSON.stringify({ ok: false, message }) + '\n');
        process.exit(1);
    },
);
