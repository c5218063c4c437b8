// Checks rendered Kubernetes manifests (the output of `helm template`) the way
// an API server and a careful reviewer would, without a cluster:
//
//  1. every object against its OpenAPI schema: npm kubernetes-models for the
//     built-in kinds, @kubernetes-models/prometheus-operator and
//     @kubernetes-models/cert-manager for the custom resources;
//  2. unknown fields refused (those schemas accept them): built-in kinds are
//     walked with @kubernetes/client-node's model metadata (attributeTypeMap);
//     custom resources are probed field by field against their schema (a field
//     the schema knows rejects a value of no JSON type; an unknown one does not);
//  3. what schemas cannot see: DNS-1123 names and label syntax, port ranges,
//     NodePorts, a PDB with exactly one of minAvailable/maxUnavailable,
//     selectors that select the pods, Service targetPorts and probe ports that
//     name real container ports, volumes for every mount, every ConfigMap and
//     Secret key the pods and flockd's config use existing in what is rendered
//     (or in a Secret declared as existing), terminationGracePeriodSeconds
//     covering preStop + drain, the securityContext rules, resources.
//
// Library: checkManifests(text, options) -> {objects, errors, notes}.
// Command line: node check-manifests.mjs [--existing-secret NAME[=key,key]]... FILE...
//   ("-" reads stdin); prints every check and exits 1 if any failed.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node/dist/gen/models/all.js';

// ---------------------------------------------------------------- helpers
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const QUANTITY = /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$/;

function isDns1123Subdomain(s) {
  return typeof s === 'string' && s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}
function isDns1123Label(s) {
  return typeof s === 'string' && s.length <= 63 && DNS1123_LABEL.test(s);
}
function isQualifiedName(key) {
  // [prefix/]name: prefix a DNS-1123 subdomain, name at most 63 characters.
  if (typeof key !== 'string') return false;
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts.at(-1);
  if (parts.length === 2 && !isDns1123Subdomain(parts[0])) return false;
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}
function isPortName(s) {
  return typeof s === 'string' && s.length <= 15 && IANA_SVC_NAME.test(s) && /[a-z]/.test(s) && !s.includes('--');
}
const isPort = (n) => Number.isInteger(n) && n >= 1 && n <= 65535;
const matches = (selector, labels) =>
  !!selector && Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels && labels[k] === v);
function labelSelectorMatches(sel, labels) {
  // A metav1.LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist).
  if (!sel) return false;
  const ml = sel.matchLabels || {};
  const me = sel.matchExpressions || [];
  if (Object.keys(ml).length === 0 && me.length === 0) return false; // selects everything: refuse
  if (!Object.entries(ml).every(([k, v]) => labels?.[k] === v)) return false;
  return me.every(({ key, operator, values = [] }) => {
    const has = labels && key in labels;
    switch (operator) {
      case 'In': return has && values.includes(labels[key]);
      case 'NotIn': return !has || !values.includes(labels[key]);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: return false;
    }
  });
}
const id = (o) => `${o?.kind ?? '?'}/${o?.metadata?.name ?? '?'}`;

// ------------------------------------------------------ schema validation
const MODEL_PACKAGES = {
  '': 'kubernetes-models',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
  'cert-manager.io': '@kubernetes-models/cert-manager',
};
const BUILTIN_GROUPS = new Set(['', 'apps', 'policy', 'batch', 'autoscaling', 'networking.k8s.io', 'rbac.authorization.k8s.io']);
const modelCache = new Map();

async function modelClass(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (modelCache.has(key)) return modelCache.get(key);
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  let pkg;
  if (BUILTIN_GROUPS.has(group)) pkg = 'kubernetes-models';
  else pkg = MODEL_PACKAGES[group];
  let cls = null;
  if (pkg) {
    const path = group && pkg === 'kubernetes-models' ? `${pkg}/${group}/${version}/${kind}`
      : group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
    try {
      const mod = await import(path);
      cls = mod[kind] ?? null;
    } catch {
      cls = null;
    }
  }
  modelCache.set(key, cls);
  return cls;
}

function schemaErrors(cls, obj) {
  try {
    new cls(structuredClone(obj)).validate();
    return [];
  } catch (e) {
    const list = e?.errors ?? e?.details ?? null;
    if (Array.isArray(list) && list.length) {
      return list.map((x) => `${x.instancePath || '/'} ${x.message ?? x.keyword} ${x.params ? JSON.stringify(x.params) : ''}`.trim());
    }
    return [String(e?.message ?? e)];
  }
}

// --------------------------------------------------- unknown-field walker
function clientNodeModel(apiVersion, kind) {
  const version = apiVersion.split('/').at(-1);
  const name = version.charAt(0).toUpperCase() + version.slice(1) + kind;
  return k8s[name] ? name : null;
}
const PRIMITIVE = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString', 'String']);

function walkKnown(value, type, path, out) {
  if (value === null || value === undefined) return;
  if (PRIMITIVE.has(type)) return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (Array.isArray(value)) value.forEach((v, i) => walkKnown(v, m[1], `${path}[${i}]`, out));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walkKnown(v, m[1], `${path}.${k}`, out);
    return;
  }
  const model = k8s[type];
  if (!model || !model.attributeTypeMap) {
    out.push(`${path}: no model metadata for type ${type}`);
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return; // the schema reports the type
  const attrs = new Map(model.attributeTypeMap.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!attrs.has(k)) {
      out.push(`${path}.${k}: unknown field (not in ${type})`);
      continue;
    }
    walkKnown(v, attrs.get(k), `${path}.${k}`, out);
  }
}

// For custom resources: a field the schema knows fails validation when its
// value is replaced by one of no JSON type (a Symbol); an unknown one passes.
function probeUnknown(cls, root) {
  const out = [];
  const valid = (o) => {
    try {
      new cls(o).validate();
      return true;
    } catch {
      return false;
    }
  };
  if (!valid(structuredClone(root))) return out; // the schema errors say enough
  const at = (o, keys) => keys.reduce((p, k) => p[k], o);
  const visit = (keys, path) => {
    const node = at(root, keys);
    const entries = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
    for (const [k, v] of entries) {
      if (keys.length === 0 && ['apiVersion', 'kind', 'metadata'].includes(k)) continue;
      const sub = Array.isArray(node) ? `${path}[${k}]` : `${path}.${k}`;
      const copy = structuredClone(root);
      at(copy, keys)[k] = Symbol('probe');
      if (valid(copy)) out.push(`${sub}: unknown field (the schema does not check it)`);
      else if (v && typeof v === 'object') visit([...keys, k], sub);
    }
  };
  visit([], '');
  // metadata is an ObjectMeta: walked with the client-node model.
  walkKnown(root.metadata, 'V1ObjectMeta', '.metadata', out);
  return out;
}

// ------------------------------------------------------------ the checker
export async function checkManifests(text, { existingSecrets = {}, existingConfigMaps = {}, log = () => {} } = {}) {
  const errors = [];
  const notes = [];
  const fail = (o, msg) => errors.push(`${id(o)}: ${msg}`);
  // Each group of checks prints "ok" or how many problems it found.
  let mark = 0;
  const ok = (msg) => {
    const n = errors.length - mark;
    log(n ? `  FAIL ${msg}: ${n} problem(s)` : `  ok  ${msg}`);
    mark = errors.length;
  };

  // Parse: duplicate keys and syntax errors are errors.
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const objects = [];
  for (const d of Array.isArray(docs) ? docs : [docs]) {
    for (const e of d.errors ?? []) errors.push(`YAML: ${e.message}`);
    for (const w of d.warnings ?? []) errors.push(`YAML warning: ${w.message}`);
    const o = d.toJS({ maxAliasCount: 0 });
    if (o === null || o === undefined) continue;
    objects.push(o);
  }
  if (errors.length) return { objects, errors, notes };
  log(`${objects.length} objects: ${objects.map(id).join(', ')}`);

  // Identity, names, labels.
  const seen = new Set();
  for (const o of objects) {
    if (!o.apiVersion || !o.kind || !o.metadata?.name) {
      fail(o, 'needs apiVersion, kind and metadata.name');
      continue;
    }
    const key = `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (seen.has(key)) fail(o, 'rendered twice');
    seen.add(key);
    const name = o.metadata.name;
    if (o.kind === 'Service') {
      if (!(name.length <= 63 && DNS1035_LABEL.test(name))) fail(o, `name "${name}" is not a DNS-1035 label (a-z0-9-, starts with a letter, at most 63)`);
    } else if (o.kind === 'StatefulSet') {
      if (!isDns1123Label(name)) fail(o, `name "${name}" is not a DNS-1123 label`);
      if (name.length > 52) fail(o, `name "${name}" is longer than 52: the pods' controller-revision-hash label would exceed 63`);
    } else if (!isDns1123Subdomain(name)) {
      fail(o, `name "${name}" is not a DNS-1123 subdomain`);
    }
    if (o.metadata.namespace !== undefined && !isDns1123Label(o.metadata.namespace)) fail(o, `namespace "${o.metadata.namespace}" is not a DNS-1123 label`);
    const checkLabels = (labels, where) => {
      for (const [k, v] of Object.entries(labels ?? {})) {
        if (!isQualifiedName(k)) fail(o, `${where}: label key "${k}" is not a qualified name`);
        if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) fail(o, `${where}: label ${k}="${v}" is not a valid label value`);
      }
    };
    const checkAnnotations = (ann, where) => {
      for (const [k, v] of Object.entries(ann ?? {})) {
        if (!isQualifiedName(k)) fail(o, `${where}: annotation key "${k}" is not a qualified name`);
        if (typeof v !== 'string') fail(o, `${where}: annotation ${k} is not a string`);
      }
    };
    checkLabels(o.metadata.labels, 'metadata.labels');
    checkAnnotations(o.metadata.annotations, 'metadata.annotations');
    if (o.spec?.template?.metadata) {
      checkLabels(o.spec.template.metadata.labels, 'spec.template.metadata.labels');
      checkAnnotations(o.spec.template.metadata.annotations, 'spec.template.metadata.annotations');
    }
    for (const l of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version',
      'app.kubernetes.io/component', 'app.kubernetes.io/managed-by', 'helm.sh/chart']) {
      if (!o.metadata.labels?.[l]) fail(o, `missing label ${l}`);
    }
  }
  ok('names are DNS-1123 (Services DNS-1035), labels and annotations well-formed, standard labels on every object');

  // Schemas and unknown fields.
  for (const o of objects) {
    const cls = await modelClass(o.apiVersion, o.kind);
    if (!cls) {
      fail(o, `no schema known for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    for (const e of schemaErrors(cls, o)) fail(o, `schema: ${e}`);
    const unknown = [];
    const model = clientNodeModel(o.apiVersion, o.kind);
    const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
    if (BUILTIN_GROUPS.has(group)) {
      if (!model) fail(o, `no client-node model for ${o.apiVersion} ${o.kind}`);
      else walkKnown(o, model, '', unknown);
    } else {
      unknown.push(...probeUnknown(cls, o));
    }
    for (const u of unknown) fail(o, u);
  }
  ok('every object valid against its schema (kubernetes-models, prometheus-operator, cert-manager), no unknown fields');

  // Index what is rendered.
  const byKind = (k) => objects.filter((o) => o.kind === k);
  const configMaps = new Map(byKind('ConfigMap').map((o) => [o.metadata.name, new Set([...Object.keys(o.data ?? {}), ...Object.keys(o.binaryData ?? {})])]));
  const secrets = new Map(byKind('Secret').map((o) => [o.metadata.name, new Set([...Object.keys(o.data ?? {}), ...Object.keys(o.stringData ?? {})])]));
  for (const c of byKind('Certificate')) {
    // cert-manager writes tls.crt, tls.key and ca.crt into spec.secretName.
    if (c.spec?.secretName && !secrets.has(c.spec.secretName)) secrets.set(c.spec.secretName, new Set(['tls.crt', 'tls.key', 'ca.crt']));
  }
  for (const [n, keys] of Object.entries(existingSecrets)) if (!secrets.has(n)) secrets.set(n, keys ? new Set(keys) : null);
  for (const [n, keys] of Object.entries(existingConfigMaps)) if (!configMaps.has(n)) configMaps.set(n, keys ? new Set(keys) : null);
  const keyExists = (map, name, key) => map.has(name) && (map.get(name) === null || map.get(name).has(key));

  // Workloads.
  const workloads = objects.filter((o) => ['StatefulSet', 'Deployment', 'DaemonSet'].includes(o.kind));
  const services = byKind('Service');
  for (const w of workloads) {
    const spec = w.spec ?? {};
    const podLabels = spec.template?.metadata?.labels ?? {};
    const pod = spec.template?.spec ?? {};
    if (!labelSelectorMatches(spec.selector, podLabels)) fail(w, 'spec.selector does not select the pod template\'s labels');
    const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    const claimNames = new Set((spec.volumeClaimTemplates ?? []).map((c) => c.metadata?.name));
    for (const n of claimNames) if (volumes.has(n)) fail(w, `volume ${n} is both a volume and a volumeClaimTemplate`);
    if ((pod.volumes ?? []).length !== volumes.size) fail(w, 'duplicate volume names');
    for (const c of spec.volumeClaimTemplates ?? []) {
      const size = c.spec?.resources?.requests?.storage;
      if (typeof size !== 'string' || !QUANTITY.test(size) || /^0+(\.0*)?[A-Za-z]*$/.test(size)) fail(w, `volumeClaimTemplate ${c.metadata?.name}: storage request "${size}" is not a positive quantity`);
    }

    // Pod security.
    const psc = pod.securityContext ?? {};
    if (psc.runAsNonRoot !== true) fail(w, 'pod securityContext.runAsNonRoot is not true');
    if (!(Number.isInteger(psc.runAsUser) && psc.runAsUser > 0)) fail(w, 'pod securityContext.runAsUser is not a non-root uid');
    if (!(Number.isInteger(psc.fsGroup) && psc.fsGroup > 0)) fail(w, 'pod securityContext.fsGroup is not set (volumes would not be writable by the user)');
    if (pod.hostNetwork || pod.hostPID || pod.hostIPC) fail(w, 'uses the host\'s network, PID or IPC namespace');
    if (pod.automountServiceAccountToken !== false) fail(w, 'mounts a service account token it does not need');

    // Referenced ConfigMaps/Secrets.
    for (const v of volumes.values()) {
      if (v.configMap) {
        if (!configMaps.has(v.configMap.name) && !v.configMap.optional) fail(w, `volume ${v.name}: ConfigMap ${v.configMap.name} is not rendered`);
        for (const it of v.configMap.items ?? []) if (!keyExists(configMaps, v.configMap.name, it.key)) fail(w, `volume ${v.name}: ConfigMap ${v.configMap.name} has no key ${it.key}`);
      }
      if (v.secret) {
        if (!secrets.has(v.secret.secretName) && !v.secret.optional) fail(w, `volume ${v.name}: Secret ${v.secret.secretName} is neither rendered, made by a Certificate, nor declared existing`);
        for (const it of v.secret.items ?? []) if (!keyExists(secrets, v.secret.secretName, it.key)) fail(w, `volume ${v.name}: Secret ${v.secret.secretName} has no key ${it.key}`);
      }
      if (v.persistentVolumeClaim) fail(w, `volume ${v.name}: a fixed PVC in a StatefulSet is shared by every pod`);
    }
    for (const s of pod.imagePullSecrets ?? []) notes.push(`${id(w)}: image pull Secret ${s.name} must exist in the cluster`);

    const allPorts = new Map(); // name -> number
    const allNumbers = new Set();
    for (const c of containers) {
      const where = `container ${c.name}`;
      if (!isDns1123Label(c.name)) fail(w, `${where}: name is not a DNS-1123 label`);
      if (!c.image || /:latest$/.test(c.image) || !/[:@]/.test(c.image)) fail(w, `${where}: image "${c.image}" has no pinned tag or digest`);
      // Ports.
      const names = new Set();
      for (const p of c.ports ?? []) {
        if (!isPort(p.containerPort)) fail(w, `${where}: containerPort ${p.containerPort} out of 1-65535`);
        if (p.name !== undefined) {
          if (!isPortName(p.name)) fail(w, `${where}: port name "${p.name}" is not an IANA service name (a-z0-9-, at most 15)`);
          if (names.has(p.name) || allPorts.has(p.name)) fail(w, `${where}: port name ${p.name} used twice`);
          names.add(p.name);
          allPorts.set(p.name, p.containerPort);
        }
        if (allNumbers.has(p.containerPort)) fail(w, `${where}: containerPort ${p.containerPort} used twice`);
        allNumbers.add(p.containerPort);
      }
      // Probes point at real ports.
      for (const pn of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const pr = c[pn];
        if (!pr) continue;
        const port = pr.httpGet?.port ?? pr.tcpSocket?.port ?? pr.grpc?.port;
        if (port === undefined) {
          if (!pr.exec) fail(w, `${where}: ${pn} has no port`);
          continue;
        }
        if (typeof port === 'string' ? !names.has(port) : !(c.ports ?? []).some((p) => p.containerPort === port)) fail(w, `${where}: ${pn} port ${port} is not a port of the container`);
        if (pr.httpGet && !String(pr.httpGet.path ?? '').startsWith('/')) fail(w, `${where}: ${pn} path "${pr.httpGet.path}" is not absolute`);
      }
      // Mounts.
      const mountPaths = new Set();
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name) && !claimNames.has(m.name)) fail(w, `${where}: volumeMount ${m.name} has no volume`);
        if (mountPaths.has(m.mountPath)) fail(w, `${where}: two mounts at ${m.mountPath}`);
        mountPaths.add(m.mountPath);
        if (!m.mountPath?.startsWith('/')) fail(w, `${where}: mountPath ${m.mountPath} is not absolute`);
        const v = volumes.get(m.name);
        if (m.subPath && v?.configMap && !v.configMap.items && !keyExists(configMaps, v.configMap.name, m.subPath)) fail(w, `${where}: subPath ${m.subPath} is not a key of ConfigMap ${v.configMap.name}`);
        if (m.subPath && v?.secret && !v.secret.items && !keyExists(secrets, v.secret.secretName, m.subPath)) fail(w, `${where}: subPath ${m.subPath} is not a key of Secret ${v.secret.secretName}`);
      }
      // Env: referenced keys exist; $(VAR) in args/command are defined.
      const envNames = new Set();
      for (const e of c.env ?? []) {
        envNames.add(e.name);
        const cm = e.valueFrom?.configMapKeyRef;
        const sk = e.valueFrom?.secretKeyRef;
        if (cm && !cm.optional && !keyExists(configMaps, cm.name, cm.key)) fail(w, `${where}: env ${e.name}: ConfigMap ${cm.name} key ${cm.key} not found`);
        if (sk && !sk.optional && !keyExists(secrets, sk.name, sk.key)) fail(w, `${where}: env ${e.name}: Secret ${sk.name} key ${sk.key} not found`);
      }
      for (const a of [...(c.command ?? []), ...(c.args ?? [])]) {
        for (const [, v] of String(a).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) if (!envNames.has(v)) fail(w, `${where}: argument ${a} uses $(${v}), which is not in env`);
      }
      // Container security.
      const sc = c.securityContext ?? {};
      if (sc.allowPrivilegeEscalation !== false) fail(w, `${where}: allowPrivilegeEscalation is not false`);
      if (sc.readOnlyRootFilesystem !== true) fail(w, `${where}: readOnlyRootFilesystem is not true`);
      if (sc.privileged === true) fail(w, `${where}: privileged`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) fail(w, `${where}: capabilities.drop does not include ALL`);
      if ((sc.capabilities?.add ?? []).length) fail(w, `${where}: adds capabilities ${sc.capabilities.add}`);
      if (sc.runAsNonRoot === false || sc.runAsUser === 0) fail(w, `${where}: runs as root`);
      if ((sc.seccompProfile ?? psc.seccompProfile)?.type !== 'RuntimeDefault') fail(w, `${where}: seccompProfile is not RuntimeDefault`);
      if (sc.readOnlyRootFilesystem === true && !(c.volumeMounts ?? []).some((m) => m.mountPath === '/tmp' && volumes.get(m.name)?.emptyDir)) fail(w, `${where}: read-only root file system but no emptyDir at /tmp`);
      // Resources.
      const r = c.resources ?? {};
      for (const k of ['cpu', 'memory']) if (r.requests?.[k] === undefined) fail(w, `${where}: no resources.requests.${k}`);
      if (r.limits?.memory === undefined) fail(w, `${where}: no resources.limits.memory`);
      for (const [kind, q] of [...Object.entries(r.requests ?? {}), ...Object.entries(r.limits ?? {})]) {
        if (!QUANTITY.test(String(q))) fail(w, `${where}: resource ${kind}=${q} is not a quantity`);
      }
    }

    // Grace period covers preStop + drain (+ 5 s to close the store).
    const main = pod.containers?.[0];
    if (main) {
      const pre = main.lifecycle?.preStop;
      let preSeconds = 0;
      if (pre?.exec) {
        const cmd = pre.exec.command ?? [];
        const i = cmd.indexOf('sleep');
        if (i >= 0) preSeconds = Number(cmd[i + 1]);
        if (!Number.isFinite(preSeconds)) fail(w, `preStop command ${JSON.stringify(cmd)}: cannot read its sleep`);
      } else if (pre?.sleep) {
        preSeconds = pre.sleep.seconds;
      }
      const drainArg = (main.args ?? []).find((a) => String(a).startsWith('--cluster-drain-timeout-ms'));
      const drainMs = drainArg ? Number(String(drainArg).split(/[= ]/)[1]) : 10000;
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      const need = preSeconds + Math.ceil(drainMs / 1000) + 5;
      if (!(grace >= need)) fail(w, `terminationGracePeriodSeconds ${grace} < preStop ${preSeconds} s + drain ${drainMs / 1000} s + 5 s = ${need}: a node would be killed before it hands its sessions over`);
      else log(`  ok  ${id(w)}: terminationGracePeriodSeconds ${grace} >= preStop ${preSeconds} + drain ${drainMs / 1000} + 5`);
      if (!spec.template?.metadata?.annotations?.['checksum/config']) fail(w, 'no checksum/config annotation on the pod template (a config change would not roll the pods)');
    }

    // Affinity / topology spread select the pods themselves.
    const aff = pod.affinity?.podAntiAffinity;
    for (const t of [...(aff?.requiredDuringSchedulingIgnoredDuringExecution ?? []), ...(aff?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p) => p.podAffinityTerm)]) {
      if (!labelSelectorMatches(t?.labelSelector, podLabels)) fail(w, 'podAntiAffinity labelSelector does not select the pods');
    }
    for (const t of pod.topologySpreadConstraints ?? []) {
      if (!labelSelectorMatches(t.labelSelector, podLabels)) fail(w, `topologySpreadConstraint on ${t.topologyKey} does not select the pods`);
    }

    // StatefulSet: its serviceName is a rendered headless Service selecting it.
    if (w.kind === 'StatefulSet') {
      const hs = services.find((s) => s.metadata.name === spec.serviceName);
      if (!hs) fail(w, `serviceName ${spec.serviceName} is not a rendered Service`);
      else {
        if (hs.spec?.clusterIP !== 'None') fail(hs, 'the StatefulSet\'s service is not headless (clusterIP: None)');
        if (hs.spec?.publishNotReadyAddresses !== true) fail(hs, 'publishNotReadyAddresses is not true: nodes could not find each other before they are ready');
        if (!matches(hs.spec?.selector, podLabels)) fail(hs, 'does not select the StatefulSet\'s pods');
      }
      w._allPorts = allPorts;
    }
    w._podLabels = podLabels;
    w._containerPorts = allPorts;
    w._containerNumbers = allNumbers;
  }
  ok('workloads: selectors, ports, probes, mounts, referenced ConfigMaps/Secrets, env, securityContext, resources');

  // Services: select pods, targetPorts exist, port ranges.
  for (const s of services) {
    const sel = s.spec?.selector;
    const targets = workloads.filter((w) => matches(sel, w._podLabels));
    if (!sel || targets.length === 0) {
      fail(s, 'selects no rendered pods');
      continue;
    }
    const type = s.spec?.type ?? 'ClusterIP';
    const names = new Set();
    const numbers = new Set();
    for (const p of s.spec?.ports ?? []) {
      if (!isPort(p.port)) fail(s, `port ${p.port} out of 1-65535`);
      if (p.name !== undefined && !isPortName(p.name)) fail(s, `port name "${p.name}" is not an IANA service name`);
      if (names.has(p.name)) fail(s, `port name ${p.name} used twice`);
      if (numbers.has(p.port)) fail(s, `port ${p.port} used twice`);
      names.add(p.name);
      numbers.add(p.port);
      if ((s.spec.ports.length > 1) && !p.name) fail(s, `port ${p.port} has no name (required when there are several)`);
      if (p.nodePort !== undefined) {
        if (!['NodePort', 'LoadBalancer'].includes(type)) fail(s, `nodePort on a ${type} Service`);
        if (!(Number.isInteger(p.nodePort) && p.nodePort >= 30000 && p.nodePort <= 32767)) fail(s, `nodePort ${p.nodePort} outside 30000-32767`);
      }
      const tp = p.targetPort ?? p.port;
      for (const w of targets) {
        if (typeof tp === 'string' ? !w._containerPorts.has(tp) : !w._containerNumbers.has(tp)) fail(s, `port ${p.name ?? p.port}: targetPort ${tp} is not a container port of ${id(w)}`);
      }
    }
    if ((s.spec?.ports ?? []).length === 0) fail(s, 'has no ports');
    if (s.spec?.externalTrafficPolicy && !['NodePort', 'LoadBalancer'].includes(type)) fail(s, `externalTrafficPolicy on a ${type} Service`);
    if (s.spec?.loadBalancerSourceRanges && type !== 'LoadBalancer') fail(s, 'loadBalancerSourceRanges on a Service that is not a LoadBalancer');
  }
  ok('Services select the pods; targetPorts name container ports; ports and NodePorts in range');

  // PDBs.
  for (const p of byKind('PodDisruptionBudget')) {
    const n = ['minAvailable', 'maxUnavailable'].filter((k) => p.spec?.[k] !== undefined && p.spec?.[k] !== null).length;
    if (n !== 1) fail(p, `must set exactly one of minAvailable and maxUnavailable (sets ${n})`);
    if (!workloads.some((w) => labelSelectorMatches(p.spec?.selector, w._podLabels))) fail(p, 'selects no rendered pods');
    const replicas = workloads.find((w) => labelSelectorMatches(p.spec?.selector, w._podLabels))?.spec?.replicas ?? 1;
    if (typeof p.spec?.minAvailable === 'number' && p.spec.minAvailable >= replicas) notes.push(`${id(p)}: minAvailable ${p.spec.minAvailable} >= replicas ${replicas}: no voluntary eviction is ever allowed`);
  }
  ok('PodDisruptionBudgets: exactly one of minAvailable/maxUnavailable, select the pods');

  // NetworkPolicies.
  for (const np of byKind('NetworkPolicy')) {
    const targets = workloads.filter((w) => labelSelectorMatches(np.spec?.podSelector, w._podLabels));
    if (targets.length === 0) fail(np, 'podSelector selects no rendered pods');
    for (const rule of np.spec?.ingress ?? []) {
      for (const port of rule.ports ?? []) {
        if (typeof port.port === 'string' && !targets.every((w) => w._containerPorts.has(port.port))) fail(np, `ingress port ${port.port} is not a named container port`);
        if (typeof port.port === 'number' && !isPort(port.port)) fail(np, `ingress port ${port.port} out of range`);
      }
      const clusterRule = (rule.ports ?? []).some((p) => p.port === 'cluster');
      if (clusterRule) {
        const from = rule.from ?? [];
        if (from.length === 0) fail(np, 'the cluster port is open to every source');
        for (const f of from) {
          if (f.ipBlock || f.namespaceSelector || !targets.every((w) => labelSelectorMatches(f.podSelector, w._podLabels))) fail(np, 'the cluster port admits sources other than the StatefulSet\'s own pods');
        }
      }
    }
  }

  // ServiceMonitors: select a rendered Service and name its port.
  for (const sm of byKind('ServiceMonitor')) {
    const svcs = services.filter((s) => labelSelectorMatches(sm.spec?.selector, s.metadata.labels));
    if (svcs.length !== 1) fail(sm, `selects ${svcs.length} rendered Services (expected exactly 1)`);
    for (const ep of sm.spec?.endpoints ?? []) {
      for (const s of svcs) if (!(s.spec?.ports ?? []).some((p) => p.name === ep.port)) fail(sm, `endpoint port ${ep.port} is not a port of Service ${s.metadata.name}`);
    }
    sm._job = svcs[0] ? (sm.spec?.jobLabel ? svcs[0].metadata.labels?.[sm.spec.jobLabel] ?? svcs[0].metadata.name : svcs[0].metadata.name) : null;
  }

  // PrometheusRules: every rule has an expr; the job selector is the ServiceMonitor's job.
  for (const pr of byKind('PrometheusRule')) {
    const groups = pr.spec?.groups ?? [];
    if (groups.length === 0) fail(pr, 'has no rule groups');
    const jobs = new Set(byKind('ServiceMonitor').map((s) => s._job).filter(Boolean));
    for (const g of groups) {
      for (const r of g.rules ?? []) {
        if (!r.expr) fail(pr, `rule ${r.alert ?? r.record}: no expr`);
        for (const [, j] of String(r.expr).matchAll(/\bjob\s*=\s*"([^"]*)"/g)) {
          if (jobs.size && !jobs.has(j)) fail(pr, `rule ${r.alert ?? r.record}: job="${j}" is not the job the ServiceMonitor produces (${[...jobs].join(', ')})`);
        }
      }
    }
  }

  // Certificates: the Secret they write is what the pods mount; cluster certs serve and dial.
  for (const c of byKind('Certificate')) {
    if (!c.spec?.issuerRef?.name) fail(c, 'no issuerRef.name');
    const iref = c.spec?.issuerRef;
    if (iref && (iref.kind ?? 'Issuer') === 'Issuer' && !byKind('Issuer').some((i) => i.metadata.name === iref.name)) notes.push(`${id(c)}: Issuer ${iref.name} is not rendered (must exist in the namespace)`);
  }

  // ConfigMaps holding JSON dashboards parse.
  for (const cm of byKind('ConfigMap')) {
    for (const [k, v] of Object.entries(cm.data ?? {})) {
      if (k.endsWith('.json')) {
        try {
          JSON.parse(v);
        } catch (e) {
          fail(cm, `data.${k} is not JSON: ${e.message}`);
        }
      }
    }
  }
  ok('NetworkPolicies, ServiceMonitors, PrometheusRules, Certificates, dashboards consistent with the rest');

  // flockd's config file: every file it names is mounted from a key that exists.
  for (const w of byKind('StatefulSet')) {
    const pod = w.spec.template.spec;
    const c = pod.containers[0];
    const cfgArg = (c.args ?? []).find((a) => String(a).startsWith('--config'));
    if (!cfgArg) {
      fail(w, 'flockd gets no --config');
      continue;
    }
    const cfgPath = String(cfgArg).split(/[= ]/)[1];
    const source = resolvePath(cfgPath, c, pod, objects);
    if (!source?.text) {
      fail(w, `--config ${cfgPath} is not a mounted ConfigMap key`);
      continue;
    }
    let cfg;
    try {
      cfg = parseAllDocuments(source.text, { uniqueKeys: true })[0]?.toJS() ?? parseAllDocuments(source.text)[0].toJS();
    } catch (e) {
      fail(w, `${cfgPath}: not YAML: ${e.message}`);
      continue;
    }
    w._flockConfig = cfg;
    const files = [];
    for (const k of ['password_file', 'acl_file', 'cluster_certfile', 'cluster_keyfile', 'cluster_cafile', 'cluster_secret_file']) if (cfg?.[k]) files.push([k, cfg[k]]);
    for (const l of cfg?.listeners ?? []) for (const k of ['certfile', 'keyfile', 'cafile']) if (l?.[k]) files.push([`listeners[${l.address}].${k}`, l[k]]);
    for (const [k, p] of files) {
      const r = resolvePath(p, c, pod, objects, secrets, configMaps);
      if (!r) fail(w, `flock.yaml ${k}: ${p} is not under any volumeMount`);
      else if (r.missing) fail(w, `flock.yaml ${k}: ${p}: ${r.missing}`);
    }
    if (cfg?.data_dir && !(c.volumeMounts ?? []).some((m) => m.mountPath === cfg.data_dir)) fail(w, `flock.yaml data_dir ${cfg.data_dir} is not a mounted volume`);
    ok(`${id(w)}: flock.yaml (${cfgPath}) and the ${files.length} files it names are mounted from existing keys`);
  }

  return { objects, errors, notes };
}

// Where a path inside the container comes from: {volume, key, text?} or {missing}.
export function resolvePath(path, container, pod, objects, secrets = null, configMaps = null) {
  const mounts = [...(container.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
  for (const m of mounts) {
    let key;
    if (m.subPath) {
      if (path !== m.mountPath) continue;
      key = m.subPath;
    } else if (path.startsWith(m.mountPath.replace(/\/?$/, '/'))) {
      key = path.slice(m.mountPath.replace(/\/?$/, '/').length);
    } else continue;
    const v = (pod.volumes ?? []).find((x) => x.name === m.name);
    if (!v) return { missing: `volume ${m.name} not found` };
    if (v.configMap) {
      let k = key;
      if (v.configMap.items) k = v.configMap.items.find((i) => i.path === key)?.key;
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === v.configMap.name);
      if (cm) return cm.data?.[k] !== undefined ? { volume: v, key: k, text: cm.data[k] } : { missing: `ConfigMap ${v.configMap.name} has no key ${key}` };
      if (configMaps?.has(v.configMap.name)) return { volume: v, key: k };
      return { missing: `ConfigMap ${v.configMap.name} not rendered` };
    }
    if (v.secret) {
      let k = key;
      if (v.secret.items) {
        k = v.secret.items.find((i) => i.path === key)?.key;
        if (!k) return { missing: `Secret volume ${v.name} does not project ${key}` };
      }
      if (secrets) {
        if (!secrets.has(v.secret.secretName)) return { missing: `Secret ${v.secret.secretName} not rendered nor declared` };
        const keys = secrets.get(v.secret.secretName);
        if (keys && !keys.has(k)) return { missing: `Secret ${v.secret.secretName} has no key ${k}` };
      }
      return { volume: v, key: k };
    }
    return { volume: v, key };
  }
  return null;
}

// ------------------------------------------------------------------ CLI
if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const existingSecrets = {};
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--existing-secret') {
      const [n, keys] = args[++i].split('=');
      existingSecrets[n] = keys ? keys.split(',') : null;
    } else files.push(args[i]);
  }
  if (files.length === 0) {
    console.error('usage: node check-manifests.mjs [--existing-secret NAME[=key,key]]... FILE... ("-" = stdin)');
    process.exit(2);
  }
  let failed = 0;
  for (const f of files) {
    const text = readFileSync(f === '-' ? 0 : f, 'utf8');
    console.log(`${f}:`);
    const { errors, notes } = await checkManifests(text, { existingSecrets, log: (m) => console.log(m) });
    for (const n of notes) console.log(`  note ${n}`);
    for (const e of errors) console.log(`  FAIL ${e}`);
    failed += errors.length;
  }
  console.log(failed ? `${failed} problem(s)` : 'all checks passed');
  process.exit(failed ? 1 : 0);
}
