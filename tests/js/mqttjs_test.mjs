// MQTT.js (the JavaScript client most browser and Node users have) against a
// real flockd. Usage: node --test mqttjs_test.mjs  with FLOCKD=/path/to/flockd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';

const flockd = process.env.FLOCKD;
let broker, port, dataDir;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
    srv.on('error', reject);
  });
}

async function waitForPort(p, deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(p, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`flockd did not accept on ${p} within ${deadlineMs} ms`);
}

// Resolves with the first value `fn` produces, or rejects after `ms`.
function within(ms, what, fn) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    fn((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}

function connect(opts) {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  return within(5000, 'connack', (ok, fail) => { c.once('connect', () => ok(c)); c.once('error', fail); });
}

before(async () => {
  assert.ok(flockd, 'set FLOCKD to the flockd binary');
  port = await freePort();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'flock-js-'));
  broker = spawn(flockd, ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--workers', '2'],
                 { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, 10000);
});

after(async () => {
  if (broker && broker.exitCode === null) {
    const exited = new Promise((r) => broker.once('exit', r));
    broker.kill('SIGTERM');
    await exited;
    assert.equal(broker.exitCode, 0, 'flockd exits cleanly on SIGTERM');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

for (const protocolVersion of [4, 5]) {
  test(`v${protocolVersion}: QoS 0, 1 and 2 round trip`, async () => {
    const sub = await connect({ protocolVersion, clientId: `js-sub-${protocolVersion}` });
    const pub = await connect({ protocolVersion, clientId: `js-pub-${protocolVersion}` });
    const topic = `js/${protocolVersion}/qos`;
    await sub.subscribeAsync(topic, { qos: 2 });
    const got = within(5000, 'three messages', (ok) => {
      const seen = [];
      sub.on('message', (t, payload, packet) => {
        seen.push([payload.toString(), packet.qos]);
        if (seen.length === 3) ok(seen);
      });
    });
    for (const qos of [0, 1, 2]) await pub.publishAsync(topic, `m${qos}`, { qos });
    const seen = await got;
    assert.deepEqual(seen.sort(), [['m0', 0], ['m1', 1], ['m2', 2]]);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  test(`v${protocolVersion}: retained message on subscribe, cleared by empty payload`, async () => {
    const c = await connect({ protocolVersion });
    const topic = `js/${protocolVersion}/retained`;
    await c.publishAsync(topic, 'kept', { qos: 1, retain: true });
    const late = await connect({ protocolVersion });
    const msg = within(5000, 'retained message', (ok) => late.on('message', (t, p, packet) => ok(packet)));
    await late.subscribeAsync(topic, { qos: 1 });
    const packet = await msg;
    assert.equal(packet.payload.toString(), 'kept');
    assert.equal(packet.retain, true);
    await c.publishAsync(topic, '', { qos: 1, retain: true });
    await Promise.all([c.endAsync(), late.endAsync()]);
  });
}

test('v5: user properties, content type and correlation data forwarded; server topic alias used', async () => {
  const sub = await connect({ protocolVersion: 5, properties: { topicAliasMaximum: 10 } });
  const pub = await connect({ protocolVersion: 5 });
  await sub.subscribeAsync('js/5/props', { qos: 1 });
  const got = within(5000, 'two messages', (ok) => {
    const seen = [];
    sub.on('message', (t, p, packet) => { seen.push({ topic: t, packet }); if (seen.length === 2) ok(seen); });
  });
  const properties = { userProperties: { a: '1' }, contentType: 'text/plain', correlationData: Buffer.from('42') };
  await pub.publishAsync('js/5/props', 'one', { qos: 1, properties });
  await pub.publishAsync('js/5/props', 'two', { qos: 1, properties });
  const seen = await got;
  for (const { topic, packet } of seen) {
    assert.equal(topic, 'js/5/props', 'MQTT.js resolves the alias back to the topic');
    assert.deepEqual({ ...packet.properties.userProperties }, { a: '1' });
    assert.equal(packet.properties.contentType, 'text/plain');
    assert.equal(packet.properties.correlationData.toString(), '42');
  }
  assert.ok(seen[1].packet.properties.topicAlias > 0, 'the broker assigned an outgoing topic alias');
  await Promise.all([sub.endAsync(), pub.endAsync()]);
});
