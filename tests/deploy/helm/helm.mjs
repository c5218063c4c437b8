// Shared by the chart tests: run the real helm (fetched by tests/deploy/fetch-helm.sh,
// its path in $HELM) with its homes in a temporary directory.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../../..');
export const CHART = join(REPO, 'helm/flock');
export const VALUES = join(HERE, 'values');

if (!process.env.HELM) throw new Error('HELM is not set (run through tests/deploy/helm/run.sh, or HELM=$(tests/deploy/fetch-helm.sh DIR))');
export const HELM = process.env.HELM;

const home = mkdtempSync(join(tmpdir(), 'flock-helm-home-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));
const env = {
  ...process.env,
  HELM_CACHE_HOME: join(home, 'cache'),
  HELM_CONFIG_HOME: join(home, 'config'),
  HELM_DATA_HOME: join(home, 'data'),
  KUBECONFIG: join(home, 'no-kubeconfig'),
};

export function helm(args, { timeout = 60000 } = {}) {
  const r = spawnSync(HELM, args, { env, encoding: 'utf8', timeout, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, args };
}

// helm template RELEASE CHART -n NS [-f file]... [--set ...] [extra]
export function template({ release = 'flock', namespace = 'mqtt', values = [], set = [], extra = [], chart = CHART } = {}) {
  const args = ['template', release, chart, '--namespace', namespace];
  for (const v of values) args.push('-f', v);
  for (const s of set) args.push('--set', s);
  args.push(...extra);
  return helm(args);
}

export function parseObjects(text) {
  return parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o);
}

export const find = (objs, kind, name) => objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

// NOTES.txt rendered as helm install would print it: helm 3 renders NOTES only
// when installing, so a copy of the chart renders it through `tpl` instead.
let notesChart = null;
export function renderNotes(opts = {}) {
  if (!notesChart) {
    notesChart = mkdtempSync(join(tmpdir(), 'flock-notes-chart-'));
    process.on('exit', () => rmSync(notesChart, { recursive: true, force: true }));
    cpSync(CHART, notesChart, { recursive: true });
    mkdirSync(join(notesChart, 'files'), { recursive: true });
    cpSync(join(CHART, 'templates/NOTES.txt'), join(notesChart, 'files/notes-under-test.txt'));
    writeFileSync(join(notesChart, 'templates/zz-notes-under-test.yaml'),
      'notes: {{ tpl (.Files.Get "files/notes-under-test.txt") . | toJson }}\n');
  }
  const r = template({ ...opts, chart: notesChart, extra: [...(opts.extra ?? []), '--show-only', 'templates/zz-notes-under-test.yaml'] });
  if (r.code !== 0) throw new Error(`rendering NOTES.txt failed: ${r.stderr}`);
  return parseObjects(r.stdout)[0].notes;
}
