// The chart's rendered configuration run by the real flockd: for several values
// files, the StatefulSet's pods are started the way a kubelet would start them
// (the container's args with $(POD_NAME)/$(POD_NAMESPACE) expanded from its env,
// the ConfigMap and Secrets materialised where the volumeMounts put them), with
// only what a single machine forces changed: mount paths become temp dirs,
// 0.0.0.0 ports become free 127.0.0.1 ports, and --cluster-dns (the headless
// Service, which has no DNS here) becomes --seeds of the other pods. Then:
// the startup and readiness probes answer, the nodes join over mutual TLS with
// the chart's own generated certificates (and a shared secret), MQTT clients
// authenticate as configured, and SIGTERM ends each node with exit 0 inside
// the rendered grace period.
//
// Run through tests/deploy/helm/run.sh (needs FLOCKD and FLOCKCTL in the environment).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { X509Certificate, randomBytes } from 'node:crypto';
import { parseAllDocuments, stringify } from 'yaml';
import { VALUES, find, parseObjects, template } from './helm.mjs';

const FLOCKD = process.env.FLOCKD;
const FLOCKCTL = process.env.FLOCKCTL;
if (!FLOCKD || !FLOCKCTL) throw new Error('FLOCKD and FLOCKCTL must name the built binaries');
const help = spawnSync(FLOCKD, ['--help'], { encoding: 'utf8' });
const HAS_CLUSTER_TLS = /--cluster-tls\b/.test(help.stdout + help.stderr);
const SKIP = HAS_CLUSTER_TLS ? false : `${FLOCKD} --help has no --cluster-tls yet: the chart's config (cluster_tls, cluster_*file) needs it`;
if (SKIP) console.log(`SKIP: ${SKIP}`);

const root = mkdtempSync(join(tmpdir(), 'flock-chart-flockd-'));
const running = new Set();
after(() => {
  for (const p of running) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, deadlineMs, fn, everyMs = 100) {
  const end = Date.now() + deadlineMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what} (last: ${last?.message ?? last})`);
}
// A port that is free now, below Linux's ephemeral range (32768-60999): the
// kernel never hands those out to clients' connections or to other tests'
// listen(0), so it stays free until the pod binds it, however long the other
// pods take to start first.
function tryPort(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.on('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
const handedOut = new Set();
async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port) || !(await tryPort(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port found in 20000-31999');
}
function httpGet(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000, ...opts });
  if (r.error) throw r.error;
  return r;
}
function openssl(args, cwd) {
  const r = run('openssl', args, { cwd });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}
const metric = (text, name, labels = {}) => {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) return Number(m[3]);
  }
  return undefined;
};

// A CA and certificates as cert-manager or an operator would make them (ECDSA P-256).
function makeCa(dir, cn) {
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
    '-subj', `/CN=${cn}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { dir, crt: readFileSync(join(dir, 'ca.crt'), 'utf8') };
}
function makeCert(ca, name, { cn, san = [], usage = 'serverAuth,clientAuth', sec1 = false } = {}) {
  const d = ca.dir;
  const ext = [`extendedKeyUsage=${usage}`, 'keyUsage=critical,digitalSignature,keyEncipherment', 'basicConstraints=CA:FALSE'];
  if (san.length) ext.push(`subjectAltName=${san.join(',')}`);
  writeFileSync(join(d, `${name}.ext`), `${ext.join('\n')}\n`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn ?? name}`], d);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-out', `${name}.crt`, '-extfile', `${name}.ext`], d);
  if (sec1) openssl(['ec', '-in', `${name}.key`, '-out', `${name}.key`], d); // "EC PRIVATE KEY", as cert-manager writes it
  return { 'tls.crt': readFileSync(join(d, `${name}.crt`), 'utf8'), 'tls.key': readFileSync(join(d, `${name}.key`), 'utf8'), 'ca.crt': ca.crt, files: { crt: join(d, `${name}.crt`), key: join(d, `${name}.key`), ca: join(d, 'ca.crt') } };
}
function passwd(dir, users) {
  const f = join(dir, 'passwd');
  for (const [u, p] of Object.entries(users)) assert.equal(run(FLOCKCTL, ['passwd', f, u, p]).status, 0);
  return readFileSync(f, 'utf8');
}

// ------------------------------------------------- a pod, as a kubelet runs it
// objs: rendered objects; i: ordinal; secretData: {secretName: {key: content}}
// for Secrets the chart does not render (existing ones, cert-manager's).
async function startPod(objs, i, { secretData = {}, seedsFor = null, ports }) {
  const sts = find(objs, 'StatefulSet');
  const ns = sts.metadata.namespace;
  const podName = `${sts.metadata.name}-${i}`;
  const pod = sts.spec.template.spec;
  const c = pod.containers[0];
  const dir = join(root, `${ns}-${podName}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });

  // Env (downward API) and $(VAR) expansion, as Kubernetes does.
  const env = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = ns;
    else throw new Error(`env ${e.name}: cannot emulate ${JSON.stringify(e.valueFrom)}`);
  }
  const expand = (s) => String(s).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v) => (v in env ? env[v] : m));

  // Volumes: ConfigMap and Secret keys as files, emptyDir and claims as dirs.
  const volumeDirs = {};
  const claimNames = new Set((sts.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name));
  for (const m of c.volumeMounts ?? []) {
    if (volumeDirs[m.name]) continue;
    const vdir = join(dir, 'volumes', m.name);
    mkdirSync(vdir, { recursive: true });
    volumeDirs[m.name] = vdir;
    const v = (pod.volumes ?? []).find((x) => x.name === m.name);
    if (!v) {
      assert.ok(claimNames.has(m.name), `mount ${m.name} has neither a volume nor a claim template`);
      continue;
    }
    let data = null;
    if (v.configMap) {
      const cm = find(objs, 'ConfigMap', v.configMap.name);
      assert.ok(cm, `ConfigMap ${v.configMap.name} not rendered`);
      data = cm.data;
    } else if (v.secret) {
      const s = find(objs, 'Secret', v.secret.secretName);
      if (s) data = Object.fromEntries(Object.entries(s.data ?? {}).map(([k, b]) => [k, Buffer.from(b, 'base64').toString()]));
      else data = secretData[v.secret.secretName];
      assert.ok(data, `Secret ${v.secret.secretName} is neither rendered nor provided by the test`);
    }
    if (data) {
      const items = (v.configMap ?? v.secret).items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
      for (const it of items) {
        assert.ok(it.key in data, `${m.name}: key ${it.key} missing`);
        writeFileSync(join(vdir, it.path), data[it.key], { mode: 0o600 });
      }
    }
  }
  const mounts = (c.volumeMounts ?? []).map((m) => ({ path: m.mountPath, host: m.subPath ? join(volumeDirs[m.name], m.subPath) : volumeDirs[m.name] }))
    .sort((a, b) => b.path.length - a.path.length);
  const hostPath = (p) => {
    for (const m of mounts) if (p === m.path || p.startsWith(`${m.path}/`)) return m.host + p.slice(m.path.length);
    return null;
  };

  // Ports: the container's named ports get free loopback ports.
  const portOf = {}; // container port number -> host port
  for (const p of c.ports ?? []) portOf[p.containerPort] = ports[p.name] ?? await freePort();
  const hostAddr = (addr) => addr.replace(/^((?:[a-z]+:\/\/)?)0\.0\.0\.0:(\d+)/, (m, proto, port) => {
    assert.ok(portOf[port], `address ${addr}: port ${port} is not a container port`);
    return `${proto}127.0.0.1:${portOf[port]}`;
  });

  // flockd's config: the mounted file, with paths and addresses made local.
  const args = (c.args ?? []).map(expand);
  const cfgArg = args.find((a) => a.startsWith('--config='));
  const cfgHost = hostPath(cfgArg.slice('--config='.length));
  const cfg = parseAllDocuments(readFileSync(cfgHost, 'utf8'))[0].toJS();
  const localise = (v) => {
    if (typeof v === 'string') return hostPath(v) ?? (/^([a-z]+:\/\/)?0\.0\.0\.0:\d+/.test(v) ? hostAddr(v) : v);
    if (Array.isArray(v)) return v.map(localise);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, localise(x)]));
    return v;
  };
  const localCfg = localise(cfg);
  const cfgFile = join(dir, 'flock.yaml');
  writeFileSync(cfgFile, stringify(localCfg));

  const headless = sts.spec.serviceName;
  const finalArgs = [];
  for (const a of args) {
    const [flag, ...rest] = a.split('=');
    const val = rest.join('=');
    if (flag === '--config') finalArgs.push(`--config=${cfgFile}`);
    else if (flag === '--cluster-listen') finalArgs.push(`--cluster-listen=${hostAddr(val)}`);
    else if (flag === '--cluster-advertise') {
      const port = val.split(':').at(-1);
      assert.equal(val, `${podName}.${headless}.${ns}.svc.cluster.local:${port}`, 'the advertised name is the pod\'s stable DNS name');
      finalArgs.push(`--cluster-advertise=127.0.0.1:${portOf[port]}`);
    } else if (flag === '--cluster-dns') {
      assert.equal(val, `${headless}.${ns}.svc.cluster.local:${val.split(':').at(-1)}`, '--cluster-dns names the headless Service');
      if (seedsFor) finalArgs.push(`--seeds=${seedsFor}`);
    } else finalArgs.push(hostPath(val) ? `${flag}=${hostPath(val)}` : a);
  }
  assert.ok(!finalArgs.some((a) => a.includes('$(')), `unexpanded variable in ${finalArgs}`);

  const log = [];
  const proc = spawn(FLOCKD, finalArgs, { cwd: volumeDirs.data ?? dir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { running.delete(proc); resolve({ code, signal }); }));
  proc.stdout.on('data', (d) => log.push(d.toString()));
  proc.stderr.on('data', (d) => log.push(d.toString()));
  const metricsPort = portOf[c.ports.find((p) => p.name === 'metrics').containerPort];
  const probePort = (probe) => {
    const p = probe.httpGet.port;
    return portOf[typeof p === 'number' ? p : c.ports.find((x) => x.name === p).containerPort];
  };
  return {
    name: podName, proc, exited, log, cfg: localCfg, args: finalArgs, dir,
    port: (name) => portOf[c.ports.find((p) => p.name === name).containerPort],
    metrics: async () => (await httpGet(metricsPort, '/metrics')).body,
    // The probes, polled as the kubelet polls them (path and port as rendered).
    async started(deadline = 30000) {
      await until(`${podName} startupProbe ${c.startupProbe.httpGet.path}`, deadline, async () => {
        if (proc.exitCode !== null) throw Object.assign(new Error(`${podName}: flockd exited ${proc.exitCode}:\n${log.join('')}`), { fatal: true });
        return (await httpGet(probePort(c.startupProbe), c.startupProbe.httpGet.path)).status === 200;
      });
      const live = await httpGet(probePort(c.livenessProbe), c.livenessProbe.httpGet.path);
      assert.equal(live.status, 200, 'livenessProbe');
    },
    async ready(deadline = 30000) {
      await until(`${podName} readinessProbe ${c.readinessProbe.httpGet.path}`, deadline, async () => {
        if (proc.exitCode !== null) throw Object.assign(new Error(`${podName}: flockd exited ${proc.exitCode}:\n${log.join('')}`), { fatal: true });
        return (await httpGet(probePort(c.readinessProbe), c.readinessProbe.httpGet.path)).status === 200;
      });
    },
    // SIGTERM (after the preStop hook, which only sleeps): exit 0 within the grace period.
    async stop() {
      const grace = pod.terminationGracePeriodSeconds;
      const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
      const t0 = Date.now();
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), (grace - preStop) * 1000);
      const r = await exited;
      clearTimeout(timer);
      const took = (Date.now() - t0) / 1000;
      assert.deepEqual(r, { code: 0, signal: null }, `${podName}: flockd did not exit 0 on SIGTERM within ${grace - preStop} s (grace ${grace} - preStop ${preStop}):\n${log.join('')}`);
      console.log(`  ok  ${podName}: SIGTERM -> exit 0 in ${took.toFixed(1)} s (grace ${grace} s, preStop ${preStop} s)`);
      return took;
    },
  };
}

async function startPods(objs, n, opts = {}) {
  // Every pod's cluster port first, so each can be given the others as seeds.
  const clusterPorts = [];
  for (let i = 0; i < n; i++) clusterPorts.push(await freePort());
  const pods = [];
  for (let i = 0; i < n; i++) {
    const seeds = clusterPorts.filter((_, j) => j !== i).map((p) => `127.0.0.1:${p}`).join(',');
    pods.push(await startPod(objs, i, { ...opts, seedsFor: seeds || null, ports: { cluster: clusterPorts[i] } }));
  }
  return pods;
}

function render(opts) {
  const r = template(opts);
  assert.equal(r.code, 0, r.stderr);
  return parseObjects(r.stdout);
}

// A WebSocket upgrade request ("mqtt" subprotocol): the HTTP status it gets.
function wsUpgrade(port, path, tlsOpts = null) {
  return new Promise((resolve, reject) => {
    const req = (tlsOpts ? https : http).request({
      host: '127.0.0.1', port, path, timeout: 5000, ...(tlsOpts ?? {}),
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Protocol': 'mqtt' },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function mosquittoPub(args) {
  return run('mosquitto_pub', ['-q', '1', '-t', 'alice/test', '-m', 'hello', '-i', `chart-test-${randomBytes(3).toString('hex')}`, ...args], { timeout: 15000 });
}

// ------------------------------------------------------------------ tests
describe('the rendered config run by the real flockd', { skip: SKIP }, () => {
  test('defaults (2 nodes): probes, mTLS with the chart\'s generated certificates and a shared secret, users, SIGTERM', async () => {
    const dir = join(root, 'users');
    mkdirSync(dir, { recursive: true });
    const users = passwd(dir, { alice: 'wonderland', bob: 'builder' });
    const objs = render({ set: ['replicaCount=2', 'cluster.secret=s3cret-for-the-test'], extra: ['--set-file', `auth.passwordFile=${join(dir, 'passwd')}`] });
    assert.equal(Buffer.from(find(objs, 'Secret', 'flock-auth').data.passwd, 'base64').toString(), users);
    const pods = await startPods(objs, 2);
    try {
      for (const p of pods) await p.started();
      console.log('  ok  startupProbe and livenessProbe (/healthz) answer 200 on both pods');
      for (const p of pods) await p.ready();
      console.log('  ok  readinessProbe (/readyz) answers 200 on both pods');
      for (const p of pods) {
        await until(`${p.name} to see its peer up`, 20000, async () => metric(await p.metrics(), 'flock_cluster_peers', { state: 'up' }) === 1);
      }
      console.log('  ok  each node sees the other up: mutual TLS with the generated CA and node certificate, shared secret accepted');
      const text = await pods[0].metrics();
      assert.equal(metric(text, 'flock_cluster_peers_refused_total', { reason: 'certificate' }) ?? 0, 0);
      assert.equal(metric(text, 'flock_cluster_peers_refused_total', { reason: 'secret' }) ?? 0, 0);
      const sec = find(objs, 'Secret', 'flock-cluster-tls');
      const notAfter = Math.floor(new Date(new X509Certificate(Buffer.from(sec.data['tls.crt'], 'base64')).validTo).getTime() / 1000);
      assert.equal(metric(text, 'flock_tls_certificate_expiry_timestamp_seconds', { listener: 'cluster' }), notAfter);
      console.log(`  ok  flock_tls_certificate_expiry_timestamp_seconds{listener="cluster"} = ${notAfter}, the generated certificate's notAfter`);

      const mqtt = String(pods[1].port('mqtt'));
      const ok = mosquittoPub(['-h', '127.0.0.1', '-p', mqtt, '-u', 'alice', '-P', 'wonderland']);
      assert.equal(ok.status, 0, `alice could not publish: ${ok.stderr}`);
      const wrong = mosquittoPub(['-h', '127.0.0.1', '-p', mqtt, '-u', 'alice', '-P', 'queen']);
      assert.notEqual(wrong.status, 0, 'a wrong password was accepted');
      const anon = mosquittoPub(['-h', '127.0.0.1', '-p', mqtt]);
      assert.notEqual(anon.status, 0, 'an anonymous client was accepted');
      assert.match(anon.stderr, /not authori[sz]ed/i);
      console.log('  ok  MQTT: a user of auth.passwordFile publishes; a wrong password and an anonymous client are refused');
    } finally {
      // Scale-down order: the highest ordinal first.
      for (const p of [...pods].reverse()) await p.stop();
    }
  });

  test('a node with a different cluster secret is refused', async () => {
    // Same chart-generated certificates for both (one render), but pod 1's secret file differs.
    const objs = render({ set: ['replicaCount=2', 'cluster.secret=the-right-one-of-the-same-length'] });
    const other = structuredClone(objs);
    find(other, 'Secret', 'flock-cluster-secret').data.secret = Buffer.from('a-wrong-one-of-the-same-length').toString('base64');
    const ports = [await freePort(), await freePort()];
    const a = await startPod(objs, 0, { seedsFor: `127.0.0.1:${ports[1]}`, ports: { cluster: ports[0] } });
    const b = await startPod(other, 1, { seedsFor: `127.0.0.1:${ports[0]}`, ports: { cluster: ports[1] } });
    try {
      await a.started();
      await b.started();
      await until('a refusal counted for the secret', 20000, async () => (metric(await a.metrics(), 'flock_cluster_peers_refused_total', { reason: 'secret' }) ?? 0) > 0
        || (metric(await b.metrics(), 'flock_cluster_peers_refused_total', { reason: 'secret' }) ?? 0) > 0);
      assert.equal(metric(await a.metrics(), 'flock_cluster_peers', { state: 'up' }) ?? 0, 0);
      assert.equal(metric(await b.metrics(), 'flock_cluster_peers', { state: 'up' }) ?? 0, 0);
      console.log('  ok  the chart\'s cluster_secret_file is enforced: a wrong secret is refused and counted, no peer up');
    } finally {
      await b.stop();
      await a.stop();
    }
  });

  test('existing Secrets: TLS listeners with client certificates, ACL, cluster mTLS with ECDSA certificates', async () => {
    const vals = join(VALUES, 'good', 'existing-secrets.yaml');
    const objs = render({ values: [vals], set: ['replicaCount=2'] });
    const dir = join(root, 'existing');
    const clusterCa = makeCa(join(dir, 'cluster-ca'), 'flock-cluster-ca');
    const node = makeCert(clusterCa, 'node', { cn: 'flock-node', san: ['DNS:*.flock-headless.mqtt.svc.cluster.local', 'DNS:*.flock-headless'], sec1: true });
    const clientCa = makeCa(join(dir, 'mqtt-ca'), 'mqtt-ca');
    const server = makeCert(clientCa, 'server', { cn: 'mqtt.example.com', san: ['DNS:mqtt.example.com', 'IP:127.0.0.1'], usage: 'serverAuth' });
    const alice = makeCert(clientCa, 'alice', { usage: 'clientAuth' });
    const users = passwd(dir, { carol: 'pw' });
    const secretData = {
      'broker-cluster-tls': { 'tls.crt': node['tls.crt'], 'tls.key': node['tls.key'], 'ca.crt': node['ca.crt'] },
      'broker-tls': { 'tls.crt': server['tls.crt'], 'tls.key': server['tls.key'], 'ca.crt': server['ca.crt'] },
      'broker-users': { 'mosquitto.passwd': users },
      'broker-cluster-secret': { token: 'a-shared-token-of-32-characters!' },
    };
    const pods = await startPods(objs, 2, { secretData });
    try {
      for (const p of pods) await p.ready();
      for (const p of pods) await until(`${p.name} peer up`, 20000, async () => metric(await p.metrics(), 'flock_cluster_peers', { state: 'up' }) === 1);
      console.log('  ok  2 nodes joined over mutual TLS with ECDSA certificates from an existing Secret (SEC1 key, as cert-manager writes it)');
      const mqtts = String(pods[0].port('mqtts'));
      const tlsArgs = ['-h', '127.0.0.1', '-p', mqtts, '--cafile', alice.files.ca];
      const certArgs = [...tlsArgs, '--cert', alice.files.crt, '--key', alice.files.key, '-V', 'mqttv5'];
      const withCert = mosquittoPub(certArgs);
      assert.equal(withCert.status, 0, `alice's certificate was refused: ${withCert.stderr}`);
      assert.doesNotMatch(withCert.stderr, /failed/i, 'alice (the certificate\'s CN) may publish to alice/# by the ACL');
      // MQTT 5 PUBACK "not authorized": mosquitto_pub says so on stderr (and exits 0).
      const elsewhere = run('mosquitto_pub', [...certArgs, '-q', '1', '-t', 'bob/test', '-m', 'x'], { timeout: 15000 });
      assert.match(elsewhere.stderr, /Publish 1 failed: Not authorized/, `the ACL let alice publish to bob/test: ${elsewhere.stderr}`);
      const noCert = mosquittoPub(tlsArgs);
      assert.notEqual(noCert.status, 0, 'a client without a certificate got through require_certificate');
      console.log('  ok  mqtts: client certificate required, its CN is the user name, the ACL applies');
      // WebSocket upgrades: wss with the client certificate, ws in the clear.
      const tlsOpts = { ca: readFileSync(alice.files.ca), cert: readFileSync(alice.files.crt), key: readFileSync(alice.files.key), servername: 'mqtt.example.com' };
      assert.equal(await wsUpgrade(pods[1].port('wss'), '/mqtt', tlsOpts), 101, 'wss listener upgrades /mqtt to WebSocket');
      assert.equal(await wsUpgrade(pods[1].port('ws'), '/mqtt'), 101, 'ws listener upgrades /mqtt to WebSocket');
      assert.equal(await wsUpgrade(pods[1].port('ws'), '/other'), 404, 'ws listener serves its path only');
      console.log('  ok  wss upgrades /mqtt to WebSocket; ws answers 404 elsewhere');
      const expiry = metric(await pods[0].metrics(), 'flock_tls_certificate_expiry_timestamp_seconds', { listener: 'cluster' });
      assert.equal(expiry, Math.floor(new Date(new X509Certificate(node['tls.crt']).validTo).getTime() / 1000));
    } finally {
      for (const p of [...pods].reverse()) await p.stop();
    }
  });

  test('cert-manager values: the Secrets its Certificates name are what the pods mount', async () => {
    const objs = render({ values: [join(VALUES, 'good', 'cert-manager.yaml')], set: ['replicaCount=1'], extra: ['--api-versions', 'cert-manager.io/v1'] });
    const dir = join(root, 'cert-manager');
    const ca = makeCa(join(dir, 'ca'), 'flock-cluster-ca');
    const nodeCert = find(objs, 'Certificate', 'flock-cluster-tls');
    const listenerCert = find(objs, 'Certificate', 'flock-tls');
    const node = makeCert(ca, 'node', { san: nodeCert.spec.dnsNames.map((d) => `DNS:${d}`), sec1: true });
    const server = makeCert(ca, 'server', { san: listenerCert.spec.dnsNames.map((d) => `DNS:${d}`), usage: 'serverAuth', sec1: true });
    const pods = await startPods(objs, 1, {
      secretData: {
        [nodeCert.spec.secretName]: { 'tls.crt': node['tls.crt'], 'tls.key': node['tls.key'], 'ca.crt': node['ca.crt'] },
        [listenerCert.spec.secretName]: { 'tls.crt': server['tls.crt'], 'tls.key': server['tls.key'], 'ca.crt': server['ca.crt'] },
      },
    });
    try {
      await pods[0].ready();
      const m = await pods[0].metrics();
      assert.ok(metric(m, 'flock_tls_certificate_expiry_timestamp_seconds', { listener: 'cluster' }) > Date.now() / 1000);
      // The mqtts listener serves the certificate of the Secret the listener Certificate names.
      const served = await new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: pods[0].port('mqtts'), ca: node['ca.crt'], servername: 'mqtt.example.com', timeout: 5000 }, () => {
          resolve(s.getPeerX509Certificate());
          s.destroy();
        });
        s.on('error', reject);
        s.on('timeout', () => s.destroy(new Error('timeout')));
      });
      assert.equal(served.fingerprint256, new X509Certificate(server['tls.crt']).fingerprint256);
      console.log('  ok  flockd serves the listener certificate and uses the cluster certificate from the Secrets the Certificates write');
    } finally {
      await pods[0].stop();
    }
  });

  test('plaintext single node with anonymous clients and no volume', async () => {
    const objs = render({ values: [join(VALUES, 'good', 'plaintext-single.yaml')] });
    const [p] = await startPods(objs, 1);
    try {
      await p.ready();
      assert.equal(p.cfg.cluster_tls, false);
      const anon = mosquittoPub(['-h', '127.0.0.1', '-p', String(p.port('mqtt'))]);
      assert.equal(anon.status, 0, `anonymous publish refused: ${anon.stderr}`);
      console.log('  ok  cluster_tls: false accepted; anonymous client publishes');
    } finally {
      await p.stop();
    }
  });

  test('production values: extra config keys, extra args, other ports, sync durability', async () => {
    const objs = render({ values: [join(VALUES, 'good', 'production.yaml')], set: ['replicaCount=1'] });
    const [p] = await startPods(objs, 1);
    try {
      await p.ready();
      assert.equal(p.cfg.max_session_expiry, 4294967295);
      assert.ok(p.args.includes('--max-inflight-messages=64'));
      const m = await p.metrics();
      assert.match(m, /^flock_/m);
      console.log('  ok  flockd accepts the production values (max_session_expiry 4294967295, --max-inflight-messages=64, durability sync)');
    } finally {
      await p.stop();
    }
  });
});
