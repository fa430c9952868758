/**
 * The kustomize renderer the manifest tests rely on (support/kustomize.ts): the same objects as
 * `kubectl kustomize` for base, dev and prod wherever kubectl is installed, and on small
 * kustomizations, the semantics it implements, and a refusal of what it does not.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { idOf, parseYamlDocuments, renderKustomization, type K8sObject } from './support/kustomize.js';
import { kustomizationDir, RENDERS, rendered } from './support/manifests.js';

const kubectl = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

(kubectl ? it : it.skip)(`renders base, dev and prod exactly as kubectl kustomize does${kubectl ? '' : ' (kubectl not installed here)'}`, () => {
  for (const render of RENDERS) {
    const theirs = parseYamlDocuments(execFileSync('kubectl', ['kustomize', kustomizationDir(render)], { encoding: 'utf8' }), 'kubectl') as K8sObject[];
    const ours = new Map(rendered(render).map((object) => [idOf(object), object]));
    expect([render, [...ours.keys()].sort()]).toEqual([render, theirs.map(idOf).sort()]);
    for (const object of theirs) expect([render, idOf(object), ours.get(idOf(object))]).toEqual([render, idOf(object), object]);
  }
});

/** Objects in a fixed order: kubectl prints them sorted by kind, this renderer in the order of the resources. */
const byId = (objects: K8sObject[]) => [...objects].sort((a, b) => idOf(a).localeCompare(idOf(b)));

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, labels: {tier: web}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: clipline
          env: [{name: A, value: "1"}]
        - name: sidecar
          image: other:1
`;
const WATCHER = 'apiVersion: example.com/v1\nkind: Watcher\nmetadata: {name: keys}\nspec: {items: [{key: "one:a:b"}, {key: "one:c"}]}\n';

/** A scratch directory per test holding base/ (a Deployment, a ConfigMap and a custom resource), and a writer into it. */
function scratchBase(): { write: (file: string, text: string) => void; dir: () => string } {
  let dir = '';
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'clipline-kustomize-'));
    write('base/kustomization.yaml', 'resources: [app.yaml]\n');
    write('base/app.yaml', `${DEPLOYMENT}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {PREFIX: one}\n---\n${WATCHER}`);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return { write, dir: () => dir };
}

describe('on a small overlay', () => {
  const { write, dir: scratch } = scratchBase();

  it('merges containers and env by name, applies JSON patches by label, sets namespace, labels and images, then replacements', () => {
    write(
      'overlay/kustomization.yaml',
      `namespace: ns
resources: [../base]
labels: [{pairs: {team: video}, includeTemplates: true}]
images: [{name: clipline, newName: registry.example/clipline, newTag: "2"}]
patches:
  - patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: app}
      spec: {template: {spec: {containers: [{name: app, env: [{name: A, value: "2"}, {name: B, value: x}]}]}}}
  - patch: '{apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {PREFIX: "{two}"}}'
  - target: {labelSelector: tier=web}
    patch: '[{"op": "add", "path": "/spec/template/spec/containers/1/args", "value": ["-v"]}]'
replacements:
  - source: {kind: ConfigMap, name: settings, fieldPath: data.PREFIX}
    targets: [{select: {kind: Watcher}, fieldPaths: ["spec.items.*.key"], options: {delimiter: ":", index: 0}}]
  - source: {kind: Deployment, name: app}
    targets: [{select: {kind: ConfigMap}, fieldPaths: [data.OWNER], options: {create: true}}]
`,
    );
    const objects = renderKustomization(path.join(scratch(), 'overlay'));
    if (kubectl)
      expect(byId(objects)).toEqual(
        byId(parseYamlDocuments(execFileSync('kubectl', ['kustomize', path.join(scratch(), 'overlay')], { encoding: 'utf8' }), 'kubectl') as K8sObject[]),
      );
    const [app, settings, keys] = objects;
    expect(settings!.metadata).toEqual({ name: 'settings', namespace: 'ns', labels: { team: 'video' } });
    expect(settings!.data).toEqual({ PREFIX: '{two}', OWNER: 'app' });
    expect((keys!.spec as any).items).toEqual([{ key: '{two}:a:b' }, { key: '{two}:c' }]);
    expect(app!.metadata).toEqual({ name: 'app', namespace: 'ns', labels: { tier: 'web', team: 'video' } });
    const spec = (app!.spec as any).template;
    expect(spec.metadata.labels).toEqual({ team: 'video' });
    expect(spec.spec.containers).toEqual([
      {
        name: 'app',
        image: 'registry.example/clipline:2',
        env: [
          { name: 'A', value: '2' },
          { name: 'B', value: 'x' },
        ],
      },
      { name: 'sidecar', image: 'other:1', args: ['-v'] },
    ]);
  });
});

describe('on what it does not render', () => {
  const { write, dir: scratch } = scratchBase();

  it('refuses fields it does not implement, patches that miss and duplicate objects', () => {
    write('bad/kustomization.yaml', 'resources: [../base]\ncommonAnnotations: {a: b}\n');
    expect(() => renderKustomization(path.join(scratch(), 'bad'))).toThrow(/commonAnnotations not supported/);
    write('miss/kustomization.yaml', 'resources: [../base]\npatches:\n  - patch: "{apiVersion: v1, kind: ConfigMap, metadata: {name: nothing}}"\n');
    expect(() => renderKustomization(path.join(scratch(), 'miss'))).toThrow(/no single target/);
    write(
      'path/kustomization.yaml',
      `resources: [../base]\npatches:\n  - target: {kind: Deployment}\n    patch: '[{"op": "replace", "path": "/spec/replicas", "value": 2}]'\n`,
    );
    expect(() => renderKustomization(path.join(scratch(), 'path'))).toThrow(/\/spec\/replicas does not exist/);
    write('twice/kustomization.yaml', 'resources: [../base, ../base/app.yaml]\n');
    expect(() => renderKustomization(path.join(scratch(), 'twice'))).toThrow(/defined more than once/);
  });
});
